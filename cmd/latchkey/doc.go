// Command latchkey runs the Latchkey login service and its helpers.
//
//	latchkey serve           run the service (configured by flags or LATCHKEY_* variables)
//	latchkey doctor          predict what each browser does with a page's login, and why
//	latchkey hash-password   read a password on stdin, print its argon2id hash
//	latchkey version         print the version
//	latchkey help [command]  print the usage, or a command's; so do -h and --help
package main

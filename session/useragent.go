package session

import "strings"

// maxUserAgentLen bounds the stored summary; it is display text only.
const maxUserAgentLen = 48

// summarizeUserAgent reduces a User-Agent header to "Browser on OS", which is
// all a "your sessions" page needs, keeps session records small, and stores
// less of what identifies a device. Order matters: Edge and Opera claim to
// be Chrome, Chrome claims to be Safari, and Android claims to be Linux.
func summarizeUserAgent(ua string) string {
	if ua == "" {
		return ""
	}
	browser := firstMatch(ua, browserTokens)
	os := firstMatch(ua, systemTokens)
	var s string
	if browser != "" || os != "" {
		s = summary(browser, os)
	} else {
		// Keep the product token only, printable ASCII, bounded.
		s, _, _ = strings.Cut(ua, " ")
		s = strings.Map(func(r rune) rune {
			if r < 0x20 || r > 0x7e {
				return -1
			}
			return r
		}, s)
	}
	if len(s) > maxUserAgentLen {
		s = s[:maxUserAgentLen]
	}
	return s
}

// browserTokens and systemTokens map a token of a User-Agent header to the
// name a summary shows, first match winning. A new name also needs a code
// in record.go (uaBrowsers, uaSystems) to be stored compactly.
var (
	browserTokens = [][2]string{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
		{"CriOS/", "Chrome"}, {"HeadlessChrome/", "Headless Chrome"}, {"Chromium/", "Chromium"}, {"Chrome/", "Chrome"},
		{"Safari/", "Safari"}, {"curl/", "curl"}, {"Go-http-client/", "Go HTTP client"},
	}
	systemTokens = [][2]string{
		{"Windows", "Windows"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"Mac OS X", "macOS"},
		{"Android", "Android"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	}
)

// summary joins a browser and a system name, either of which may be
// empty, as summarizeUserAgent shows them.
func summary(browser, os string) string {
	switch {
	case browser != "" && os != "":
		return browser + " on " + os
	case browser != "":
		return browser
	case os != "":
		return "Unknown browser on " + os
	}
	return ""
}

func firstMatch(ua string, table [][2]string) string {
	for _, e := range table {
		if strings.Contains(ua, e[0]) {
			return e[1]
		}
	}
	return ""
}

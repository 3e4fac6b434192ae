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
	browser := firstMatch(ua, [][2]string{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"FxiOS/", "Firefox"},
		{"CriOS/", "Chrome"}, {"HeadlessChrome/", "Headless Chrome"}, {"Chromium/", "Chromium"}, {"Chrome/", "Chrome"},
		{"Safari/", "Safari"}, {"curl/", "curl"}, {"Go-http-client/", "Go HTTP client"},
	})
	os := firstMatch(ua, [][2]string{
		{"Windows", "Windows"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"Mac OS X", "macOS"},
		{"Android", "Android"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	})
	var s string
	switch {
	case browser != "" && os != "":
		s = browser + " on " + os
	case browser != "":
		s = browser
	case os != "":
		s = "Unknown browser on " + os
	default:
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

func firstMatch(ua string, table [][2]string) string {
	for _, e := range table {
		if strings.Contains(ua, e[0]) {
			return e[1]
		}
	}
	return ""
}

package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
)

// FuzzRequestLineJSON: for any field values, AppendJSON writes exactly
// what slog.JSONHandler writes for the line's Record, and declines only
// what it documents: a year outside 0 to 9999, a duration that is not
// finite.
func FuzzRequestLineJSON(f *testing.F) {
	v4, v6 := []byte{127, 0, 0, 1}, netip.MustParseAddr("2001:db8::1").AsSlice()
	f.Add(int64(1767225600123456789), int16(0), "K7Q2ZJ5XWMA3B4CD", "public", "example", "OPTIONS", "/v1/t/{tenant}/login", 204, 0.012, v4, "", int64(0))
	f.Add(int64(-1), int16(330), "a \"quoted\" \\ id\n\t\r\x00\x1f\x7f", "<admin>&", "é日本", "\u2028\u2029", "\xff\xfe/x", -1, 1e21, v6, "", int64(12))
	f.Add(int64(0), int16(0), "", "", "", "", "", 0, math.Copysign(0, -1), []byte{}, "", int64(0))
	f.Add(int64(math.MaxInt64), int16(-600), "x", "y", "z", "GET", "/", math.MaxInt64, 1e-7, v6, "eth0\"\n", int64(9000))
	f.Add(int64(1), int16(1), "x", "y", "z", "GET", "/", 500, math.Inf(-1), v4, "", int64(0))
	f.Add(int64(1), int16(1), "x", "y", "z", "GET", "/", 500, math.NaN(), v4, "", int64(0))
	f.Add(int64(1), int16(1), "x", "y", "z", "GET", "/", 200, 999999999999.999, netip.MustParseAddr("::ffff:192.0.2.1").AsSlice(), "", int64(0))
	f.Add(int64(1), int16(1), "x", "y", "z", "GET", "/", 200, 1000000000000.001, v4, "", int64(0))
	f.Fuzz(func(t *testing.T, nanos int64, zoneMinutes int16, id, listener, tenant, method, route string, status int, dur float64, ipBytes []byte, zone string, years int64) {
		var tm time.Time
		switch {
		case nanos == 0:
			// The zero time: JSONHandler writes no "time".
		case zoneMinutes == 0:
			tm = time.Unix(0, nanos).UTC()
		default:
			tm = time.Unix(0, nanos).In(time.FixedZone("Z", int(zoneMinutes)*60))
		}
		if years != 0 {
			tm = tm.AddDate(int(years%20000), 0, 0) // years Unix nanoseconds do not reach
		}
		ip, _ := netip.AddrFromSlice(ipBytes) // the zero Addr unless 4 or 16 bytes
		ip = ip.WithZone(zone)                // only IPv6 takes one
		l := RequestLine{Time: tm, RequestID: id, Listener: listener, Tenant: tenant, Method: method, Route: route, Status: status, DurationMS: dur, ClientIP: ip}
		var want bytes.Buffer
		if err := slog.NewJSONHandler(&want, nil).Handle(context.Background(), l.Record()); err != nil {
			t.Fatal(err)
		}
		y := tm.Round(0).Year()
		decline := (!tm.IsZero() && (y < 0 || y >= 10000)) || math.IsInf(dur, 0) || math.IsNaN(dur)
		got, ok := l.AppendJSON(nil)
		if ok == decline {
			t.Errorf("AppendJSON ok = %v, want %v for %s", ok, !decline, &want)
		}
		if ok && string(got) != want.String() {
			t.Errorf("AppendJSON:\n got %q\nwant %q", got, want.String())
		}
	})
}

// TestLogFloatThousandths: the shortcut for counts of thousandths (a
// duration_ms) writes what encoding/json does, for every count below
// 100 000 (100 s) and for counts drawn up to and past where it stops.
func TestLogFloatThousandths(t *testing.T) {
	t.Parallel()
	check := func(k int64) {
		f := float64(k) / 1000
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendLogFloat(nil, f); string(got) != string(want) {
			t.Fatalf("%d/1000: got %s, want %s", k, got, want)
		}
	}
	for k := range int64(100_000) {
		check(k)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		check(rnd.Int64N(2e15))
	}
}

// recordingHandler is a JSONHandler that also implements
// RequestLineHandler and counts the lines given to it that way.
type recordingHandler struct {
	*slog.JSONHandler
	lines int
}

func (h *recordingHandler) HandleRequestLine(ctx context.Context, l RequestLine) error {
	h.lines++
	return h.Handle(ctx, l.Record())
}

// TestRequestLineShape: a request's line has exactly the keys operators
// rely on, in this order and of these JSON types, whether the handler
// takes a Record or the RequestLine.
func TestRequestLineShape(t *testing.T) {
	t.Parallel()
	for _, lineHandler := range []bool{false, true} {
		t.Run(fmt.Sprintf("RequestLineHandler=%v", lineHandler), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{})
			var logs syncBuffer
			var h slog.Handler = slog.NewJSONHandler(&logs, nil)
			rh := &recordingHandler{JSONHandler: h.(*slog.JSONHandler)}
			if lineHandler {
				h = rh
			}
			srv := serverOver(t, e, Config{Logger: slog.New(h)})
			w := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "/healthz", nil)
			r.RemoteAddr = "192.0.2.7:4711"
			srv.Admin().ServeHTTP(w, r)
			if lineHandler && rh.lines != 1 {
				t.Errorf("HandleRequestLine called %d times, want 1", rh.lines)
			}
			var line string
			for l := range strings.SplitSeq(logs.String(), "\n") {
				if strings.Contains(l, `"msg":"request"`) {
					line = l
				}
			}
			dec := json.NewDecoder(strings.NewReader(line))
			dec.UseNumber()
			if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
				t.Fatalf("not a JSON object: %q", line)
			}
			var got []string
			for dec.More() {
				k, _ := dec.Token()
				v, _ := dec.Token()
				kind := fmt.Sprintf("%T", v)
				if n, ok := v.(json.Number); ok {
					kind = "float"
					if !strings.ContainsAny(n.String(), ".eE") {
						kind = "int"
					}
				}
				got = append(got, fmt.Sprintf("%v:%s", k, kind))
			}
			// duration_ms is a float, written without a fraction when whole.
			want := "time:string level:string msg:string request_id:string listener:string tenant:string method:string route:string status:int duration_ms:(float|int) client_ip:string"
			if s := strings.Join(got, " "); !regexp.MustCompile("^" + want + "$").MatchString(s) {
				t.Errorf("request line %s\nkeys %s\nwant %s", line, s, want)
			}
			for _, want := range []string{`"level":"INFO","msg":"request","request_id":"` + w.Header().Get("X-Request-Id") + `","listener":"admin"`, `"route":"/healthz","status":200,`, `"client_ip":"192.0.2.7"}`} {
				if !strings.Contains(line, want) {
					t.Errorf("request line %s lacks %s", line, want)
				}
			}
		})
	}
}

package session

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestReceiptRoundTripAndLifetime(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r, err := f.m.Receipt(f.t)
	if err != nil {
		t.Fatal(err)
	}
	if len(r) > MaxReceiptLen {
		t.Errorf("len(receipt) = %d, want at most MaxReceiptLen (%d)", len(r), MaxReceiptLen)
	}
	if !f.m.CheckReceipt(f.t, r) {
		t.Fatal("CheckReceipt(fresh receipt) = false, want true")
	}
	// Another replica with the same keys takes it, as a page's next call
	// may reach any of them.
	if !f.manager(t, key1).CheckReceipt(f.t, r) {
		t.Error("CheckReceipt on another replica = false, want true")
	}
	if r2, _ := f.m.Receipt(f.t); r2 == r {
		t.Error("two receipts are equal: the nonce is missing")
	}
	f.clock.Advance(ReceiptLifetime)
	if !f.m.CheckReceipt(f.t, r) {
		t.Error("CheckReceipt at exactly ReceiptLifetime = false, want true")
	}
	f.clock.Advance(time.Second)
	if f.m.CheckReceipt(f.t, r) {
		t.Error("CheckReceipt past ReceiptLifetime = true, want false")
	}
}

func TestReceiptSurvivesKeyRotation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	old, err := f.m.Receipt(f.t)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.m.Codec().SetKeys([][]byte{key2, key1}); err != nil {
		t.Fatal(err)
	}
	if !f.m.CheckReceipt(f.t, old) {
		t.Error("a receipt signed by the previous key = refused, want accepted while that key verifies")
	}
	if err := f.m.Codec().SetKeys([][]byte{key2}); err != nil {
		t.Fatal(err)
	}
	if f.m.CheckReceipt(f.t, old) {
		t.Error("a receipt signed by a retired key = accepted, want refused")
	}
}

// TestReceiptIsNoCookie: a receipt never verifies as a session cookie, a
// cookie never as a receipt, and one tenant's receipt never for another,
// in either of a dev tenant's cookie names.
func TestReceiptIsNoCookie(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	_, cookie := f.login(t, f.m)
	r, err := f.m.Receipt(f.t)
	if err != nil {
		t.Fatal(err)
	}
	if f.m.CheckReceipt(f.t, cookie) {
		t.Error("CheckReceipt(session cookie) = true, want false")
	}
	dev := *f.t
	dev.Dev, dev.Cookie = true, CookiePolicy{SameSite: SameSiteLax}
	for _, tn := range []*Tenant{f.t, dev.OverPlainLoopback()} {
		if _, err := f.m.Load(t.Context(), tn, []string{r}); !errors.Is(err, ErrUnauthenticated) {
			t.Errorf("Load(receipt as %s) = %v, want ErrUnauthenticated", tn.CookieName(), err)
		}
		if ok, err := f.m.Valid(t.Context(), tn, []string{r}); ok || err != nil {
			t.Errorf("Valid(receipt as %s) = %v, %v; want false, nil", tn.CookieName(), ok, err)
		}
	}
	// The plain-HTTP copy of a dev tenant issues and takes the same
	// receipts: they name the tenant, not the cookie.
	plain := dev.OverPlainLoopback()
	if pr, _ := f.m.Receipt(plain); !f.m.CheckReceipt(&dev, pr) {
		t.Error("a receipt of a dev tenant's plain-HTTP copy is refused by the tenant")
	}
	other := *f.t
	other.ID = "beta"
	if f.m.CheckReceipt(&other, r) {
		t.Error("CheckReceipt(acme's receipt, beta) = true, want false")
	}
}

func TestReceiptRefusesBadValues(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r, err := f.m.Receipt(f.t)
	if err != nil {
		t.Fatal(err)
	}
	long, _ := f.m.codec.encodeAt(receiptName(f.t.ID), make([]byte, 64), f.clock.Now())
	short, _ := f.m.codec.encodeAt(receiptName(f.t.ID), make([]byte, receiptNonceLen-1), f.clock.Now())
	for name, v := range map[string]string{
		"empty":               "",
		"tampered":            r[:len(r)-4] + "AAA=",
		"truncated":           r[:len(r)/2],
		"oversized":           strings.Repeat("A", MaxReceiptLen+1),
		"long payload":        long,
		"short payload":       short,
		"other key":           mustReceipt(t, f.manager(t, key2), f.t),
		"with a line break":   r[:10] + "\n" + r[10:],
		"unpadded":            strings.TrimRight(r, "="),
		"standard base64":     strings.NewReplacer("-", "+", "_", "/").Replace(r),
		"wrapped in spaces":   " " + r + " ",
		"twice":               r + r,
		"signed for a cookie": mustEncode(t, f.m, f.t, string(bytes.Repeat([]byte{7}, receiptNonceLen))),
	} {
		if v == r {
			continue // the replacement changed nothing: no case
		}
		if f.m.CheckReceipt(f.t, v) {
			t.Errorf("CheckReceipt(%s) = true, want false", name)
		}
	}
}

// TestReceiptRevealsNothing: the receipt's payload is random bytes only,
// whoever logs in; its only other parts are the issue time and the MAC.
func TestReceiptRevealsNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s, cookie := f.login(t, f.m)
	r, err := f.m.Receipt(f.t)
	if err != nil {
		t.Fatal(err)
	}
	outer, err := base64.URLEncoding.DecodeString(r)
	if err != nil {
		t.Fatal(err)
	}
	parts := bytes.SplitN(outer, []byte("|"), 3)
	if len(parts) != 3 {
		t.Fatalf("receipt has %d parts, want date|payload|mac", len(parts))
	}
	payload, err := base64.URLEncoding.DecodeString(string(parts[1]))
	if err != nil || len(payload) != receiptNonceLen {
		t.Fatalf("payload = %x (%v), want %d random bytes", payload, err, receiptNonceLen)
	}
	for _, secret := range []string{"alice", s.ID, cookie} {
		if bytes.Contains(outer, []byte(secret)) || strings.Contains(r, secret) {
			t.Errorf("the receipt contains %q", secret)
		}
	}
}

func mustReceipt(tb testing.TB, m *Manager, t *Tenant) string {
	tb.Helper()
	r, err := m.Receipt(t)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func TestValidReadsOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	s, v := f.login(t, f.m)
	f.clock.Advance(30 * time.Minute) // past refreshAfter: a Load would write
	ok, err := f.m.Valid(t.Context(), f.t, []string{v})
	if !ok || err != nil {
		t.Fatalf("Valid(live cookie) = %v, %v; want true, nil", ok, err)
	}
	rec, err := f.st.GetSession(t.Context(), "acme", "alice", s.ID)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.m.decodeSession(rec)
	if err != nil {
		t.Fatal(err)
	}
	if !got.LastSeenAt.Equal(s.LastSeenAt) {
		t.Errorf("LastSeenAt after Valid = %v, want unchanged %v", got.LastSeenAt, s.LastSeenAt)
	}
	for name, values := range map[string][]string{"none": nil, "two": {v, v}, "tampered": {v[:len(v)-2] + "AA"}} {
		if ok, err := f.m.Valid(t.Context(), f.t, values); ok || err != nil {
			t.Errorf("Valid(%s) = %v, %v; want false, nil", name, ok, err)
		}
	}
	f.clock.Advance(time.Hour) // idle past the timeout
	if ok, err := f.m.Valid(t.Context(), f.t, []string{v}); ok || err != nil {
		t.Errorf("Valid(idle-expired cookie) = %v, %v; want false, nil", ok, err)
	}
}

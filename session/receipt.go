package session

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"
)

// A login receipt lets Latchkey tell "this browser did not store or send
// the session cookie" from "this session expired". The login answer
// carries one; a page that sends it back (the Latchkey-Receipt header) on
// its next call without the cookie gets the doctor's diagnosis instead of
// a bare 401.
//
// A receipt is no credential and names nobody: it is 128 random bits
// (the nonce), dated and MAC'd by the cookie codec under a name of its own
// that names the tenant, "latchkey-receipt:<tenant>". No cookie name has a
// ':' (a tenant ID is a DNS label), and the MAC covers the name, so a
// receipt never verifies as a cookie, nor a cookie as a receipt, and one
// tenant's receipt never verifies for another. It carries no username, no
// session ID and nothing derived from them, so that a leaked receipt says
// nothing of the user and opens nothing: it only ever chooses which 401
// a request without a session gets. It verifies under every cookie key,
// so that it survives a key rotation as cookies do, for ReceiptLifetime
// by the Manager's clock.

// ReceiptHeader is the request header a page sends a receipt back in; a
// tenant's CORS configuration allows it.
const ReceiptHeader = "Latchkey-Receipt"

// ReceiptLifetime is how long a login receipt verifies: long enough for
// the page's first calls after its login, short enough that a copied one
// soon says nothing.
const ReceiptLifetime = 5 * time.Minute

// MaxReceiptLen bounds a receipt as it is presented: ours are 92 bytes,
// and a longer value is refused before any decoding.
const MaxReceiptLen = 128

// receiptNonceLen is the length of a receipt's random payload.
const receiptNonceLen = 16

func receiptName(id TenantID) string { return "latchkey-receipt:" + string(id) }

// Receipt returns a new login receipt for t, dated now.
func (m *Manager) Receipt(t *Tenant) (string, error) {
	var nonce [receiptNonceLen]byte
	rand.Read(nonce[:]) // never fails (crypto/rand)
	v, err := m.codec.encodeAt(receiptName(t.ID), nonce[:], m.now())
	if err != nil {
		return "", fmt.Errorf("session: encode receipt: %w", err)
	}
	return v, nil
}

// CheckReceipt reports whether receipt is one of t's, issued by Receipt no
// longer than ReceiptLifetime ago. It reads nothing from the store and
// never authenticates anything.
func (m *Manager) CheckReceipt(t *Tenant, receipt string) bool {
	if len(receipt) == 0 || len(receipt) > MaxReceiptLen {
		return false
	}
	var buf [receiptNonceLen + 8]byte
	p, err := m.codec.decodeAt(buf[:0], receiptName(t.ID), ReceiptLifetime, receipt, m.now())
	return err == nil && len(p) == receiptNonceLen
}

// Valid reports whether values (the request's session cookies) name
// exactly one live session, as Load does, but only reads: it neither
// slides the idle expiry nor fills the cache, so that a diagnostic call
// leaves the session as it found it. A store failure is an error;
// anything the client sent wrong is false.
func (m *Manager) Valid(ctx context.Context, t *Tenant, values []string) (bool, error) {
	if len(values) != 1 {
		return false, nil
	}
	token, user, err := m.parseCookie(t, values[0], nil)
	if err != nil {
		return false, nil
	}
	_, err = m.get(ctx, t, user, sessionID(token))
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

package topology

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TLSFiles are the paths of PEM files made for one test: a CA, a server
// certificate and a client certificate that it signed, and an unrelated
// CA that signed nothing here.
type TLSFiles struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey string
	// OtherCA is a CA that did not sign the server certificate: a wrong
	// LATCHKEY_REDIS_CA_FILE.
	OtherCA string
}

// WriteTLSFiles generates the TLSFiles (ECDSA P-256, valid for an hour)
// in a directory of tb's own. The server certificate is for 127.0.0.1 and
// localhost.
func WriteTLSFiles(tb testing.TB) *TLSFiles {
	tb.Helper()
	dir := tb.TempDir()
	write := func(name, typ string, der []byte) string {
		tb.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			tb.Fatalf("write %s: %v", name, err)
		}
		return path
	}
	newKey := func() *ecdsa.PrivateKey {
		tb.Helper()
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			tb.Fatalf("generate key: %v", err)
		}
		return k
	}
	var serial int64
	template := func(cn string) *x509.Certificate {
		serial++
		return &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			NotBefore:    time.Now().Add(-time.Minute),
			NotAfter:     time.Now().Add(time.Hour),
		}
	}
	sign := func(tmpl, parent *x509.Certificate, pub, signer any) []byte {
		tb.Helper()
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			tb.Fatalf("create certificate %s: %v", tmpl.Subject.CommonName, err)
		}
		return der
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		tb.Helper()
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			tb.Fatalf("marshal key: %v", err)
		}
		return der
	}
	newCA := func(cn string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		tb.Helper()
		k := newKey()
		tmpl := template(cn)
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
		der := sign(tmpl, tmpl, &k.PublicKey, k)
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			tb.Fatalf("parse CA: %v", err)
		}
		return cert, k, der
	}

	f := &TLSFiles{}
	ca, caKey, caDER := newCA("Latchkey test CA")
	f.CA = write("ca.pem", "CERTIFICATE", caDER)
	_, _, otherDER := newCA("Latchkey unrelated CA")
	f.OtherCA = write("other-ca.pem", "CERTIFICATE", otherDER)

	serverKey := newKey()
	server := template("redis test server")
	server.DNSNames = []string{"localhost"}
	server.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	server.KeyUsage = x509.KeyUsageDigitalSignature
	server.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	f.ServerCert = write("server.pem", "CERTIFICATE", sign(server, ca, &serverKey.PublicKey, caKey))
	f.ServerKey = write("server-key.pem", "PRIVATE KEY", keyDER(serverKey))

	clientKey := newKey()
	client := template("latchkey test client")
	client.KeyUsage = x509.KeyUsageDigitalSignature
	client.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	f.ClientCert = write("client.pem", "CERTIFICATE", sign(client, ca, &clientKey.PublicKey, caKey))
	f.ClientKey = write("client-key.pem", "PRIVATE KEY", keyDER(clientKey))
	return f
}

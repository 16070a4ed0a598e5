// Command sumdb is a real Go checksum database for gomirror's integration
// tests, built on golang.org/x/mod/sumdb. It answers lookups for any
// module@version found in a static GOPROXY layout (the layout of
// $GOMODCACHE/cache/download) by computing the two go.sum lines from the
// stored .zip and .mod, and answers 404 for everything else.
//
//	sumdb -root DIR -addr 127.0.0.1:PORT -name NAME -keyfile FILE [-log FILE]
//
// The verifier key ("name+hash+key") is written to -keyfile before the
// server starts listening, so a client may read it as soon as the port
// accepts connections. -skeyfile reuses (or creates) a signer key so the
// database keeps its identity across restarts.
package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
)

func main() {
	root := flag.String("root", "", "static GOPROXY layout to compute go.sum lines from")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	name := flag.String("name", "sumdb.test", "checksum database name")
	keyfile := flag.String("keyfile", "", "write the verifier key here")
	skeyfile := flag.String("skeyfile", "", "read the signer key from here (created if missing)")
	logfile := flag.String("log", "", "append one line per request path here")
	flag.Parse()
	if *root == "" || *keyfile == "" {
		log.Fatal("usage: sumdb -root DIR -addr HOST:PORT -name NAME -keyfile FILE [-log FILE]")
	}

	skey, vkey, err := loadOrGenerate(*skeyfile, *name)
	if err != nil {
		log.Fatal(err)
	}

	gosum := func(path, vers string) ([]byte, error) {
		return goSumLines(*root, path, vers)
	}
	srv := sumdb.NewServer(sumdb.NewTestServer(skey, gosum))

	var mu sync.Mutex
	var logw io.Writer = io.Discard
	if *logfile != "" {
		f, err := os.OpenFile(*logfile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			log.Fatal(err)
		}
		logw = f
	}

	mux := http.NewServeMux()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		fmt.Fprintf(logw, "%s %s\n", r.Method, r.URL.Path)
		mu.Unlock()
		srv.ServeHTTP(w, r)
	})
	for _, p := range sumdb.ServerPaths {
		mux.Handle(p, handler)
	}
	mux.Handle("/", handler) // logs and 404s everything else

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	tmp := *keyfile + ".tmp"
	if err := os.WriteFile(tmp, []byte(vkey+"\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.Rename(tmp, *keyfile); err != nil {
		log.Fatal(err)
	}
	log.Printf("sumdb %s serving %s on http://%s", *name, *root, ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}

func loadOrGenerate(skeyfile, name string) (skey, vkey string, err error) {
	if skeyfile != "" {
		if data, err := os.ReadFile(skeyfile); err == nil {
			skey = strings.TrimSpace(string(data))
			vkey, err := verifierFromSigner(skey)
			return skey, vkey, err
		}
	}
	skey, vkey, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", err
	}
	if skeyfile != "" {
		if err := os.WriteFile(skeyfile, []byte(skey+"\n"), 0o600); err != nil {
			return "", "", err
		}
	}
	return skey, vkey, nil
}

// verifierFromSigner derives "name+hash+key" from "PRIVATE+KEY+name+hash+key".
func verifierFromSigner(skey string) (string, error) {
	if _, err := note.NewSigner(skey); err != nil {
		return "", err
	}
	f := strings.SplitN(skey, "+", 5)
	if len(f) != 5 {
		return "", errors.New("malformed signer key")
	}
	raw, err := base64.StdEncoding.DecodeString(f[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", errors.New("malformed signer key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(f[2], pub)
}

func notFound(path, vers string) error {
	return &fs.PathError{Op: "lookup", Path: path + "@" + vers, Err: fs.ErrNotExist}
}

// goSumLines returns the two go.sum lines for path@vers from the layout.
func goSumLines(root, path, vers string) ([]byte, error) {
	epath, err := module.EscapePath(path)
	if err != nil {
		return nil, notFound(path, vers)
	}
	evers, err := module.EscapeVersion(vers)
	if err != nil {
		return nil, notFound(path, vers)
	}
	base := filepath.Join(root, filepath.FromSlash(epath), "@v", evers)
	zipfile := base + ".zip"
	if _, err := os.Stat(zipfile); err != nil {
		return nil, notFound(path, vers)
	}
	modData, err := os.ReadFile(base + ".mod")
	if err != nil {
		return nil, notFound(path, vers)
	}
	zipHash, err := dirhash.HashZip(zipfile, dirhash.Hash1)
	if err != nil {
		return nil, err
	}
	modHash, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(string(modData))), nil
	})
	if err != nil {
		return nil, err
	}
	return []byte(fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", path, vers, zipHash, path, vers, modHash)), nil
}

package router

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bgpfabric/bgpfabric/peering"
)

// Secrets resolves the BGP passwords that BGPPeers name (spec.password.
// secretKeyRef: a secret name and a key). The api has no Secret kind:
// secrets stay out of etcd, on the node, in the way Kubernetes mounts
// them:
//
//   - a file Dir/<name>/<key> (its content, without a trailing newline), or
//     else
//   - the environment variable BGPFABRIC_SECRET_<NAME>_<KEY>, with the
//     name and key upper-cased and every character that is not a letter or
//     digit turned into "_" (secretKeyRef {name: tor-pw, key: password} is
//     BGPFABRIC_SECRET_TOR_PW_PASSWORD).
//
// A password that cannot be found is an error for that session only: the
// router does not configure it (a session without the password would be
// refused by the peer anyway) and reports the error in its status.
type Secrets struct {
	// Dir is the secrets directory (bgpfabric node --secrets-dir); empty
	// means environment variables only.
	Dir string
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
}

// ErrNoSecret says that a secret key was found nowhere.
var ErrNoSecret = errors.New("secret not found")

// Password returns the password ref points to.
func (s Secrets) Password(ref peering.SecretRef) (string, error) {
	if ref.IsZero() {
		return "", nil
	}
	if strings.ContainsAny(ref.Name+ref.Key, "/\\") || ref.Name == ".." || ref.Key == ".." {
		return "", fmt.Errorf("secret %s/%s: invalid name", ref.Name, ref.Key)
	}
	if s.Dir != "" {
		b, err := os.ReadFile(filepath.Join(s.Dir, ref.Name, ref.Key))
		switch {
		case err == nil:
			return strings.TrimRight(string(b), "\r\n"), nil
		case !errors.Is(err, os.ErrNotExist):
			return "", fmt.Errorf("secret %s/%s: %w", ref.Name, ref.Key, err)
		}
	}
	getenv := s.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := getenv(SecretEnv(ref)); v != "" {
		return v, nil
	}
	where := "environment " + SecretEnv(ref)
	if s.Dir != "" {
		where = filepath.Join(s.Dir, ref.Name, ref.Key) + " or " + where
	}
	return "", fmt.Errorf("secret %s/%s: %w (looked in %s)", ref.Name, ref.Key, ErrNoSecret, where)
}

// SecretEnv is the environment variable that may hold ref.
func SecretEnv(ref peering.SecretRef) string {
	up := func(s string) string {
		return strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z':
				return r - 'a' + 'A'
			case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
				return r
			}
			return '_'
		}, s)
	}
	return "BGPFABRIC_SECRET_" + up(ref.Name) + "_" + up(ref.Key)
}

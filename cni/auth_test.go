package cni_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/bgpfabric/bgpfabric/api"
	"github.com/bgpfabric/bgpfabric/internal/etcdtest"
)

// TestDatastoreAuth: the plugin, run by libcni as a runtime runs it,
// authenticates to an etcd with authentication enabled with the username
// and password file of its configuration; wrong credentials are an error
// that says so (and not "try again later").
func TestDatastoreAuth(t *testing.T) {
	if testing.Short() {
		t.Skip("etcd: runs without -short")
	}
	e := startEtcd(t)
	admin := e.client(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := admin.Create(ctx, &api.Node{ObjectMeta: api.ObjectMeta{Name: "node-1"}}); err != nil {
		t.Fatal(err)
	}
	etcdtest.EnableAuth(t, admin, "s3cret")

	dir := t.TempDir()
	pwFile := func(name, pw string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, bad := pwFile("good", "s3cret"), pwFile("bad", "guess")
	status := func(ds string) error {
		list, err := libcni.ConfListFromBytes([]byte(`{"cniVersion":"1.1.0","name":"auth","plugins":[{"type":"bgpfabric-cni","nodeName":"node-1",
			"dataDir":"` + filepath.Join(dir, "state") + `","datastore":` + ds + `}]}`))
		if err != nil {
			t.Fatal(err)
		}
		c := libcni.NewCNIConfigWithCacheDir([]string{plugin(t)}, filepath.Join(dir, "cache"), nil)
		return c.GetStatusNetworkList(ctx, list)
	}
	ep := `"endpoints":["` + e.endpoint() + `"],"dialTimeout":"5s"`
	if err := status(`{` + ep + `,"username":"root","passwordFile":"` + good + `"}`); err != nil {
		t.Errorf("STATUS with the right password: %v", err)
	}
	var te *types.Error
	err := status(`{` + ep + `,"username":"root","passwordFile":"` + bad + `"}`)
	if !errors.As(err, &te) || te.Code != types.ErrPluginNotAvailable || !strings.Contains(te.Msg, "refused the credentials") || !strings.Contains(te.Msg, "wrong username or password") {
		t.Errorf("STATUS with a wrong password: %v, want code 50 saying the credentials were refused", err)
	}
	err = status(`{` + ep + `}`)
	if !errors.As(err, &te) || !strings.Contains(te.Msg, "give a username and password") {
		t.Errorf("STATUS without credentials: %v, want an error asking for them", err)
	}
	err = status(`{` + ep + `,"username":"root","passwordFile":"` + filepath.Join(dir, "missing") + `"}`)
	if !errors.As(err, &te) || !strings.Contains(te.Msg, "datastore.passwordFile") {
		t.Errorf("STATUS with a missing password file: %v, want an error naming datastore.passwordFile", err)
	}
}

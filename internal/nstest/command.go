package nstest

import (
	"os"
	"os/exec"
	"testing"
)

// RequireCommand returns the path of the program name (a test peer from
// Debian: bird, birdc, vtysh, bgpd, gobgpd), which scripts/deps.sh installs.
// When it is missing, tb skips, or fails when the environment variable CI is
// "true", as RequireRoot does.
func RequireCommand(tb testing.TB, name string) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("nstest: runs a test daemon: not run with -short")
	}
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("nstest: %s is not installed (scripts/deps.sh installs it), and CI=true forbids skipping: %v", name, err)
	}
	tb.Skipf("nstest: %s is not installed (scripts/deps.sh installs it; set CI=true to fail instead of skipping)", name)
	return ""
}

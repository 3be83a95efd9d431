package okpkg

import "testing"

func TestPass(t *testing.T) { t.Log("quiet") }
func TestSkip(t *testing.T) { t.Skip("needs a daemon") }
func TestSub(t *testing.T) {
	t.Run("a", func(t *testing.T) {})
	t.Run("b", func(t *testing.T) { t.Skipf("sub %d", 2) })
}

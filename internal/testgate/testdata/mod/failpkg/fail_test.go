package failpkg

import "testing"

func TestPass(t *testing.T) {}
func TestFail(t *testing.T) {
	t.Run("sub", func(t *testing.T) { t.Errorf("want %d, got %d", 1, 2) })
}

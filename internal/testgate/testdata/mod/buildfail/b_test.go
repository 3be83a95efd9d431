package buildfail

import "testing"

func TestF(t *testing.T) { F() }

package buildfail

func F() int { return "x" }

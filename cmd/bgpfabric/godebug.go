//go:debug multipathtcp=0

package main

// Since Go 1.24, net.ListenConfig makes MPTCP listening sockets, on which
// Linux refuses TCP_MD5SIG (ENOPROTOOPT): GoBGP could then not install the
// BGP peers' MD5 keys on its listener. The directive above makes every
// listener of this binary plain TCP (see router/gobgp).

package main

import "encoding/binary"

// The EVPN case (-family evpn): injectors announce EVPN type-2 (MAC/IP
// advertisement) routes, each of its own MAC and IPv4 address, with the
// injector's RD, one label and one route target, as VXLAN EVPN leaves do;
// monitors count distinct MACs. BIRD 2 does not carry EVPN.

const (
	afiL2VPN = 25
	safiEVPN = 70
)

// evpnOpenMsg is openMsg with the L2VPN EVPN multiprotocol capability.
func evpnOpenMsg(id uint32) []byte {
	b := header(nil, msgOpen)
	b = append(b, 4)
	b = binary.BigEndian.AppendUint16(b, benchAS)
	b = binary.BigEndian.AppendUint16(b, holdTime)
	b = binary.BigEndian.AppendUint32(b, id)
	caps := []byte{1, 4, 0, afiL2VPN, 0, safiEVPN, 65, 4, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(caps[8:], benchAS)
	b = append(b, byte(len(caps)+2), 2, byte(len(caps)))
	b = append(b, caps...)
	setLen(b)
	return b
}

// evpnRoute appends route idx of injector i: a type-2 route of MAC
// 02:00:idx and IPv4 address 11.0.0.0 + idx.
func evpnRoute(dst []byte, i, idx int) []byte {
	dst = append(dst, 2, 37)                                          // type 2, length
	dst = append(dst, 0, 1, 198, 18, byte((i+1)>>8), byte(i+1), 0, 1) // RD type 1: 198.18.x.y:1
	dst = append(dst, make([]byte, 10)...)                            // ESI 0
	dst = append(dst, 0, 0, 0, 0)                                     // Ethernet tag 0
	dst = append(dst, 48, 2, 0)                                       // MAC length, MAC
	dst = binary.BigEndian.AppendUint32(dst, uint32(idx))
	dst = append(dst, 32) // IP length, IPv4 address
	dst = binary.BigEndian.AppendUint32(dst, uint32(prefixBase+idx))
	return append(dst, 0, 0x27, 0x11) // the label field: VNI 10001 (RFC 8365 5.1.3)
}

const evpnRouteLen = 2 + 37

// evpnBlob encodes injector i's p routes as packed UPDATEs.
func evpnBlob(i, p int) []byte {
	nh := []byte{198, 18, byte((i + 1) >> 8), byte(i + 1)}
	attrs := []byte{
		0x40, 1, 1, 0, // ORIGIN IGP
		0x40, 2, 0, // AS_PATH empty (iBGP)
		0x40, 5, 4, 0, 0, 0, 100, // LOCAL_PREF 100
		0xc0, 16, 16, // EXTENDED_COMMUNITIES: route target 65000:100, encapsulation VXLAN
		0x00, 0x02, 0xfd, 0xe8, 0, 0, 0, 100,
		0x03, 0x0c, 0, 0, 0, 0, 0, 8,
	}
	mpHead := 4 + 3 + 1 + len(nh) + 1 // extended attribute header, AFI/SAFI, next hop, reserved
	room := maxMsgLen - headerLen - 4 - len(attrs) - mpHead
	var out []byte
	for j := 0; j < p; {
		start := len(out)
		out = header(out, msgUpdate)
		out = append(out, 0, 0, 0, 0) // no withdrawals; attribute length below
		mp := len(out)
		out = append(out, 0x90, 14, 0, 0, 0, afiL2VPN, safiEVPN, byte(len(nh)))
		out = append(append(out, nh...), 0)
		for n := 0; n+evpnRouteLen <= room && j < p; n += evpnRouteLen {
			out = evpnRoute(out, i, i*p+j)
			j++
		}
		binary.BigEndian.PutUint16(out[mp+2:], uint16(len(out)-mp-4))
		out = append(out, attrs...)
		binary.BigEndian.PutUint16(out[start+headerLen+2:], uint16(len(out)-mp))
		setLen(out[start:])
	}
	return out
}

// evpnIndexes calls fn with the index of every type-2 route that an
// UPDATE's MP_REACH_NLRI announces.
func evpnIndexes(body []byte, fn func(idx int)) {
	wl := int(binary.BigEndian.Uint16(body))
	al := int(binary.BigEndian.Uint16(body[2+wl:]))
	attrs := body[4+wl : 4+wl+al]
	for len(attrs) >= 3 {
		flags, typ := attrs[0], attrs[1]
		hl, vl := 3, int(attrs[2])
		if flags&0x10 != 0 {
			hl, vl = 4, int(binary.BigEndian.Uint16(attrs[2:]))
		}
		if hl+vl > len(attrs) {
			return
		}
		v := attrs[hl : hl+vl]
		attrs = attrs[hl+vl:]
		if typ != 14 || len(v) < 5 || v[1] != afiL2VPN || v[2] != safiEVPN {
			continue
		}
		nlri := v[4+int(v[3])+1:]
		for len(nlri) >= 2 && len(nlri) >= 2+int(nlri[1]) {
			r := nlri[2 : 2+int(nlri[1])]
			if nlri[0] == 2 && len(r) >= 29 && r[22] == 48 {
				fn(int(binary.BigEndian.Uint32(r[25:29])))
			}
			nlri = nlri[2+int(nlri[1]):]
		}
	}
}

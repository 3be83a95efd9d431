package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// The benchmark's speakers talk BGP directly: OPEN with the 4-octet AS
// and IPv4 unicast capabilities, pre-encoded packed UPDATEs, and monitors
// that count NLRI without decoding attributes, so that the harness costs
// the reflector under test as little CPU as possible.

const (
	msgOpen      = 1
	msgUpdate    = 2
	msgNotify    = 3
	msgKeepalive = 4
	headerLen    = 19
	maxMsgLen    = 4096
	prefixBase   = 0x0B000000 // 11.0.0.0: prefixes are consecutive /24s
	holdTime     = 180
)

func header(dst []byte, typ byte) []byte {
	for range 16 {
		dst = append(dst, 0xff)
	}
	return append(dst, 0, 0, typ)
}

func setLen(msg []byte) { binary.BigEndian.PutUint16(msg[16:], uint16(len(msg))) }

func openMsg(id uint32) []byte {
	b := header(nil, msgOpen)
	b = append(b, 4)                                    // version
	b = binary.BigEndian.AppendUint16(b, benchAS)       // my AS
	b = binary.BigEndian.AppendUint16(b, holdTime)      // hold time
	b = binary.BigEndian.AppendUint32(b, id)            // BGP identifier
	caps := []byte{1, 4, 0, 1, 0, 1, 65, 4, 0, 0, 0, 0} // MP IPv4 unicast; 4-octet AS
	binary.BigEndian.PutUint32(caps[8:], benchAS)
	b = append(b, byte(len(caps)+2), 2, byte(len(caps))) // optional parameters: capabilities
	b = append(b, caps...)
	setLen(b)
	return b
}

var keepalive = func() []byte { b := header(nil, msgKeepalive); setLen(b); return b }()

// injectorBlob encodes injector i's p prefixes as packed UPDATEs.
func injectorBlob(i, p int) []byte {
	nh := [4]byte{198, 18, byte((i + 1) >> 8), byte(i + 1)}
	attrs := []byte{
		0x40, 1, 1, 0, // ORIGIN IGP
		0x40, 2, 0, // AS_PATH empty (iBGP)
		0x40, 3, 4, nh[0], nh[1], nh[2], nh[3], // NEXT_HOP
		0x40, 5, 4, 0, 0, 0, 100, // LOCAL_PREF 100
	}
	var out []byte
	room := maxMsgLen - headerLen - 4 - len(attrs)
	for j := 0; j < p; {
		start := len(out)
		out = header(out, msgUpdate)
		out = append(out, 0, 0) // no withdrawals
		out = binary.BigEndian.AppendUint16(out, uint16(len(attrs)))
		out = append(out, attrs...)
		for n := 0; n+4 <= room && j < p; n += 4 {
			a := uint32(prefixBase + (i*p+j)<<8)
			out = append(out, 24, byte(a>>24), byte(a>>16), byte(a>>8))
			j++
		}
		setLen(out[start:])
	}
	return out
}

// speaker is one established session.
type speaker struct {
	conn net.Conn
	br   *bufio.Reader
	wmu  sync.Mutex // writes: UPDATE blob and KEEPALIVEs
	evpn bool       // the session carries EVPN (evpn.go), not IPv4 unicast
}

func dialSpeaker(ctx context.Context, local string, port int, id uint32, evpn bool) (*speaker, error) {
	return dialSpeakerOpen(ctx, local, port, id, 1<<20, evpn)
}

// dialSpeakerBuf is dialSpeaker of IPv4 unicast with a read buffer of
// bufSize bytes.
func dialSpeakerBuf(ctx context.Context, local string, port int, id uint32, bufSize int) (*speaker, error) {
	return dialSpeakerOpen(ctx, local, port, id, bufSize, false)
}

func dialSpeakerOpen(ctx context.Context, local string, port int, id uint32, bufSize int, evpn bool) (*speaker, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(rrAddr, strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	s := &speaker{conn: conn, br: bufio.NewReaderSize(conn, bufSize), evpn: evpn}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	open := openMsg(id)
	if evpn {
		open = evpnOpenMsg(id)
	}
	if _, err := conn.Write(open); err != nil {
		conn.Close()
		return nil, err
	}
	for got := 0; got < 2; { // the daemon's OPEN, then its KEEPALIVE
		msg, err := s.read()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("%s: handshake: %w", local, err)
		}
		switch msg[18] {
		case msgOpen:
			if _, err := conn.Write(keepalive); err != nil {
				conn.Close()
				return nil, err
			}
			got++
		case msgKeepalive:
			got++
		case msgNotify:
			conn.Close()
			return nil, fmt.Errorf("%s: handshake: notification %d/%d", local, msg[19], msg[20])
		}
	}
	conn.SetDeadline(time.Time{})
	return s, nil
}

func (s *speaker) read() ([]byte, error) {
	h, err := s.br.Peek(headerLen)
	if err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(h[16:]))
	if n < headerLen || n > 65535 {
		return nil, errors.New("bad message length")
	}
	msg := make([]byte, n)
	_, err = io.ReadFull(s.br, msg)
	return msg, err
}

func (s *speaker) write(b []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.conn.Write(b)
	return err
}

// keepalives sends a KEEPALIVE every 30 s until ctx ends.
func (s *speaker) keepalives(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if s.write(keepalive) != nil {
				return
			}
		}
	}
}

// monitor reads UPDATEs and counts distinct announced prefixes until it
// has all total; it reports its result on done.
func (s *speaker) monitor(total int, done chan<- error) { s.monitorWant(total, total, done) }

// monitorWant counts distinct announced prefixes of the benchmark's first
// total until it has want of them.
func (s *speaker) monitorWant(total, want int, done chan<- error) {
	seen := make([]uint64, (total+63)/64)
	got := 0
	for got < want {
		msg, err := s.read()
		if err != nil {
			done <- fmt.Errorf("monitor after %d of %d prefixes: %w", got, total, err)
			return
		}
		switch msg[18] {
		case msgNotify:
			done <- fmt.Errorf("monitor after %d of %d prefixes: notification %d/%d", got, total, msg[19], msg[20])
			return
		case msgUpdate:
		default:
			continue
		}
		body := msg[headerLen:]
		if s.evpn {
			evpnIndexes(body, func(idx int) {
				if idx >= 0 && idx < total && seen[idx/64]&(1<<(idx%64)) == 0 {
					seen[idx/64] |= 1 << (idx % 64)
					got++
				}
			})
			continue
		}
		wl := int(binary.BigEndian.Uint16(body))
		al := int(binary.BigEndian.Uint16(body[2+wl:]))
		nlri := body[4+wl+al:]
		for len(nlri) > 0 {
			bits := int(nlri[0])
			n := (bits + 7) / 8
			if len(nlri) < 1+n {
				break
			}
			var a [4]byte
			copy(a[:], nlri[1:1+n])
			idx := int((binary.BigEndian.Uint32(a[:]) - prefixBase) >> 8)
			if bits == 24 && idx >= 0 && idx < total && seen[idx/64]&(1<<(idx%64)) == 0 {
				seen[idx/64] |= 1 << (idx % 64)
				got++
			}
			nlri = nlri[1+n:]
		}
	}
	done <- nil
}

// drain reads and discards until the connection closes.
func (s *speaker) drain() { io.Copy(io.Discard, s.br) }

// drive connects the monitors and injectors, lets the sessions settle,
// then injects and waits for every monitor. It returns the convergence
// time and the daemon's CPU time over it.
func drive(ctx context.Context, d *daemon, port int, c benchCase) (time.Duration, time.Duration, error) {
	total := c.n * c.p
	blobs := make([][]byte, c.n)
	var bw sync.WaitGroup
	for i := range blobs {
		bw.Go(func() {
			if c.evpn {
				blobs[i] = evpnBlob(i, c.p)
			} else {
				blobs[i] = injectorBlob(i, c.p)
			}
		})
	}
	bw.Wait()
	// FRR closes sessions established in its first second.
	select {
	case <-time.After(1500 * time.Millisecond):
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	inj, mon := peerAddrs(c)
	var speakers []*speaker
	defer func() {
		for _, s := range speakers {
			s.conn.Close()
		}
	}()
	connect := func(local string, id uint32) (*speaker, error) {
		var err error
		for attempt := 0; attempt < 5; attempt++ {
			var s *speaker
			if s, err = dialSpeaker(sctx, local, port, id, c.evpn); err == nil {
				speakers = append(speakers, s)
				go s.keepalives(sctx)
				return s, nil
			}
			select {
			case <-time.After(500 * time.Millisecond):
			case <-sctx.Done():
				return nil, sctx.Err()
			}
		}
		return nil, err
	}
	done := make(chan error, c.k)
	var monitors []*speaker
	for i, a := range mon {
		s, err := connect(a, 0x0A020000+uint32(i+1))
		if err != nil {
			return 0, 0, err
		}
		monitors = append(monitors, s)
	}
	var injectors []*speaker
	for i, a := range inj {
		s, err := connect(a, 0x0A010000+uint32(i+1))
		if err != nil {
			return 0, 0, err
		}
		injectors = append(injectors, s)
	}
	// Let the sessions settle: FRR holds announcements to new peers for
	// 1 s + 50 ms per peer (its update-group coalesce timer).
	settle := time.Second + time.Duration(c.n+c.k)*50*time.Millisecond
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	for _, s := range monitors {
		go s.monitor(total, done)
	}
	for _, s := range injectors {
		go s.drain() // injectors receive the others' routes
	}
	cpu0 := d.cpuTime()
	start := time.Now()
	werr := make(chan error, len(injectors))
	for i, s := range injectors {
		go func() { werr <- s.write(blobs[i]) }()
	}
	for range c.k {
		select {
		case err := <-done:
			if err != nil {
				return 0, 0, err
			}
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
	}
	elapsed := time.Since(start)
	cpu := d.cpuTime() - cpu0
	for range injectors {
		if err := <-werr; err != nil {
			return 0, 0, fmt.Errorf("injecting: %w", err)
		}
	}
	return elapsed, cpu, nil
}

package bfd

import "sync"

// subscriber delivers state changes to one callback from its own
// goroutine, through a bounded queue.
type subscriber struct {
	fn func(StateChange)

	mu    sync.Mutex
	queue []StateChange

	signal chan struct{} // size 1
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
}

func newSubscriber(fn func(StateChange)) *subscriber {
	sub := &subscriber{fn: fn, signal: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go sub.run()
	return sub
}

func (sub *subscriber) push(changes []StateChange) {
	sub.mu.Lock()
	sub.queue = append(sub.queue, changes...)
	if len(sub.queue) > maxQueued {
		sub.queue = collapse(sub.queue)
	}
	sub.mu.Unlock()
	select {
	case sub.signal <- struct{}{}:
	default:
	}
}

// collapse keeps the last change of each session, in the order of those
// last changes: bounded by the number of sessions.
func collapse(q []StateChange) []StateChange {
	last := make(map[uint32]int, len(q))
	for i, c := range q {
		last[c.LocalDiscriminator] = i
	}
	out := q[:0:0]
	for i, c := range q {
		if last[c.LocalDiscriminator] == i {
			out = append(out, c)
		}
	}
	return out
}

func (sub *subscriber) run() {
	defer close(sub.done)
	for {
		select {
		case <-sub.stop:
			return
		case <-sub.signal:
		}
		sub.mu.Lock()
		q := sub.queue
		sub.queue = nil
		sub.mu.Unlock()
		for _, c := range q {
			select {
			case <-sub.stop:
				return
			default:
			}
			sub.fn(c)
		}
	}
}

func (sub *subscriber) close() {
	sub.once.Do(func() { close(sub.stop) })
	<-sub.done
}

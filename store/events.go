package store

// SendEvent hands ev to a subscriber's channel without blocking, keeping
// the loss visible: an event is queued only while at least two slots are
// free, so the last slot is always there for an EventsLost. When ev does
// not fit, an EventsLost takes the last slot instead (unless one is
// already queued there) and SendEvent reports false. The subscriber then
// reads the EventsLost after every event it did receive, and so after the
// loss. ch must have a capacity of at least 2, and one goroutine at a time
// may send on it (backends send under a lock or from one goroutine).
func SendEvent(ch chan<- Event, ev Event) bool {
	if len(ch) < cap(ch)-1 {
		ch <- ev // cannot block: a slot is free and no one else sends
		return true
	}
	SendLost(ch)
	return false
}

// SendLost queues an EventsLost without blocking (after a reconnect, say).
// If the channel is full, its last event is already an EventsLost (see
// SendEvent), which the subscriber reads after the loss: nothing is lost
// by dropping this one.
func SendLost(ch chan<- Event) {
	select {
	case ch <- Event{Kind: EventsLost}:
	default:
	}
}

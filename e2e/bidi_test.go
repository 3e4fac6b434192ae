package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// bidiConn is a WebDriver BiDi session over one WebSocket: commands are
// JSON objects with an id, answered by a message with the same id; events
// are messages with a method and no id (https://w3c.github.io/webdriver-bidi/#protocol).
// No Go client of the protocol is served by the module proxy, so this is
// the transport and nothing more: each engine file sends the commands it
// needs with the parameters the spec names.
//
// A bidiConn is safe for concurrent use: commands from parallel scenarios
// are multiplexed by id.
type bidiConn struct {
	ws *websocket.Conn

	mu      sync.Mutex
	next    int64
	pending map[int64]chan bidiReply
	events  []func(method string, params json.RawMessage)
	err     error // why the read loop ended
	done    chan struct{}
}

type bidiReply struct {
	Type    string          `json:"type"` // "success", "error" or "event"
	ID      *int64          `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	Result  json.RawMessage `json:"result"`
	Error   string          `json:"error"`
	Message string          `json:"message"`
}

// bidiError is an error the remote end answered a command with.
type bidiError struct {
	Method, Code, Message string
}

func (e *bidiError) Error() string { return fmt.Sprintf("%s: %s: %s", e.Method, e.Code, e.Message) }

// dialBiDi connects to url (ws://127.0.0.1:port/session), never through a
// proxy, and starts reading.
func dialBiDi(ctx context.Context, url string) (*bidiConn, error) {
	client := &http.Client{Transport: &http.Transport{
		Proxy:       nil,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	}}
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		return nil, fmt.Errorf("bidi: dial %s: %w", url, err)
	}
	ws.SetReadLimit(64 << 20) // screenshots come back as base64 in one message
	c := &bidiConn{ws: ws, pending: make(map[int64]chan bidiReply), done: make(chan struct{})}
	go c.read()
	return c, nil
}

func (c *bidiConn) read() {
	var err error
	for {
		var data []byte
		_, data, err = c.ws.Read(context.Background())
		if err != nil {
			break
		}
		var r bidiReply
		if err = json.Unmarshal(data, &r); err != nil {
			err = fmt.Errorf("bidi: message %.200q: %w", data, err)
			break
		}
		c.mu.Lock()
		if r.ID != nil {
			if ch := c.pending[*r.ID]; ch != nil {
				delete(c.pending, *r.ID)
				ch <- r
			}
			c.mu.Unlock()
			continue
		}
		handlers := c.events
		c.mu.Unlock()
		for _, h := range handlers {
			h(r.Method, r.Params)
		}
	}
	c.mu.Lock()
	c.err = err
	for id, ch := range c.pending {
		delete(c.pending, id)
		close(ch)
	}
	c.mu.Unlock()
	close(c.done)
}

// onEvent adds f to the functions called, on the read loop, with every
// event: f must only copy what it needs, under a lock of its own.
func (c *bidiConn) onEvent(f func(method string, params json.RawMessage)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, f)
}

// call sends method with params and decodes the result into result (when
// not nil), within ctx.
func (c *bidiConn) call(ctx context.Context, method string, params, result any) error {
	if params == nil {
		params = struct{}{}
	}
	ch := make(chan bidiReply, 1)
	c.mu.Lock()
	if c.err != nil || c.pending == nil {
		err := c.err
		c.mu.Unlock()
		return fmt.Errorf("bidi: %s: connection closed: %v", method, err)
	}
	c.next++
	id := c.next
	c.pending[id] = ch
	c.mu.Unlock()
	msg, err := json.Marshal(map[string]any{"id": id, "method": method, "params": params})
	if err != nil {
		return fmt.Errorf("bidi: %s: %w", method, err)
	}
	if err := c.ws.Write(ctx, websocket.MessageText, msg); err != nil {
		c.forget(id)
		return fmt.Errorf("bidi: %s: %w", method, err)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return fmt.Errorf("bidi: %s: connection closed", method)
		}
		if r.Type == "error" {
			return &bidiError{Method: method, Code: r.Error, Message: r.Message}
		}
		if result == nil {
			return nil
		}
		if err := json.Unmarshal(r.Result, result); err != nil {
			return fmt.Errorf("bidi: %s: result %.200q: %w", method, r.Result, err)
		}
		return nil
	case <-ctx.Done():
		c.forget(id)
		return fmt.Errorf("bidi: %s: %w", method, ctx.Err())
	}
}

func (c *bidiConn) forget(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, id)
}

// close ends the WebSocket and waits for the read loop.
func (c *bidiConn) close() {
	c.ws.Close(websocket.StatusNormalClosure, "")
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		c.ws.CloseNow()
		<-c.done
	}
}

// isBiDiError reports whether err is the remote end's answer code.
func isBiDiError(err error, code string) bool {
	var be *bidiError
	return errors.As(err, &be) && be.Code == code
}

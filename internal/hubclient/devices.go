package hubclient

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Device is what PutDevices registers.
type Device struct {
	ID           string
	PrimaryKey   string
	SecondaryKey string
	Disabled     bool
}

func devicePath(id string) string {
	return "/devices/" + url.PathEscape(id) + "?api-version=" + APIVersion
}

func deviceBody(d Device) map[string]any {
	status := "enabled"
	if d.Disabled {
		status = "disabled"
	}
	return map[string]any{
		"deviceId": d.ID,
		"status":   status,
		"authentication": map[string]any{"type": "sas",
			"symmetricKey": map[string]string{"primaryKey": d.PrimaryKey, "secondaryKey": d.SecondaryKey}},
	}
}

// PutDevice creates d or, when it exists, replaces it (If-Match "*"), so a
// run can reuse devices an earlier run made. Transient failures (network,
// 5xx, 429) are retried a few times.
func (c *Client) PutDevice(ctx context.Context, d Device) error {
	path := devicePath(d.ID)
	var err error
	for attempt := range 5 {
		var code int
		var body []byte
		resp, serr := c.Send(ctx, http.MethodPut, path, deviceBody(d), map[string]string{"If-Match": `"*"`})
		if serr == nil {
			code = resp.StatusCode
			body = readSmall(resp)
		}
		switch {
		case serr != nil:
			err = serr
		case code == http.StatusOK || code == http.StatusCreated:
			return nil
		case code == http.StatusNotFound:
			// If-Match on a device that does not exist yet: create.
			if cerr := c.DoJSON(ctx, http.MethodPut, path, deviceBody(d), nil); cerr == nil {
				return nil
			} else {
				err = cerr
			}
		default:
			err = &StatusError{http.MethodPut, path, code, string(body)}
			if code < 500 && code != http.StatusTooManyRequests {
				return err
			}
		}
		if ctx.Err() != nil {
			return errors.Join(err, ctx.Err())
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
	return err
}

func readSmall(resp *http.Response) []byte {
	defer resp.Body.Close()
	b := make([]byte, 512)
	n, _ := resp.Body.Read(b)
	return b[:n]
}

// PutDevices registers devs with par requests in flight, calling progress
// (if not nil) with the count done after each. The first error stops
// handing out work and is returned.
func (c *Client) PutDevices(ctx context.Context, devs []Device, par int, progress func(done int)) error {
	return ForEach(ctx, len(devs), par, func(i int) error {
		err := c.PutDevice(ctx, devs[i])
		return err
	}, progress)
}

// SetStatus enables or disables a device, keeping its keys.
func (c *Client) SetStatus(ctx context.Context, d Device, disabled bool) error {
	d.Disabled = disabled
	return c.PutDevice(ctx, d)
}

// ForEach runs f(0…n-1) with par workers; progress (if not nil) gets the
// number of finished calls after each. The first error stops handing out
// more work and is returned.
func ForEach(ctx context.Context, n, par int, f func(i int) error, progress func(done int)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next, done atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for range max(1, min(par, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
				d := done.Add(1)
				if progress != nil {
					progress(int(d))
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return first
}

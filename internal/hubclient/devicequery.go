package hubclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// DevicePage is one page of an IoT Hub device query (POST /devices/query).
type DevicePage struct {
	// Items are the results as the hub wrote them: twins for SELECT *,
	// projected or aggregated objects otherwise.
	Items []json.RawMessage
	// ItemType is the x-ms-item-type header: "twin" or "raw".
	ItemType string
	// Continuation is the x-ms-continuation header, "" on the last page.
	Continuation string
}

// MaxQueryPage is the largest page the hub returns (x-ms-max-item-count).
const MaxQueryPage = 1000

// QueryDevices runs one page of a device query. pageSize 0 lets the hub
// choose (100, as IoT Hub); continuation is "" for the first page and the
// previous page's Continuation after it. An error answer is a
// *StatusError carrying the hub's whole body (its message has the query's
// line and column for a syntax error).
func (c *Client) QueryDevices(ctx context.Context, query string, pageSize int, continuation string) (DevicePage, error) {
	path := "/devices/query?api-version=" + APIVersion
	headers := map[string]string{}
	if pageSize > 0 {
		headers["x-ms-max-item-count"] = strconv.Itoa(pageSize)
	}
	if continuation != "" {
		headers["x-ms-continuation"] = continuation
	}
	resp, err := c.Send(ctx, http.MethodPost, path, map[string]string{"query": query}, headers)
	if err != nil {
		return DevicePage{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	if err != nil {
		return DevicePage{}, fmt.Errorf("reading the query answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return DevicePage{}, &StatusError{http.MethodPost, path, resp.StatusCode, string(body)}
	}
	page := DevicePage{ItemType: resp.Header.Get("x-ms-item-type"), Continuation: resp.Header.Get("x-ms-continuation")}
	if err := json.Unmarshal(body, &page.Items); err != nil {
		return DevicePage{}, fmt.Errorf("the query answer is not a JSON array: %w", err)
	}
	return page, nil
}

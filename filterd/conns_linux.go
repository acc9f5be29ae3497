package filterd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/florianl/go-nflog/v2"

	"github.com/VerilyPete/claudecontainer/nft"
)

// watchRefused reads the packets the nftables rules log (NFLOG group
// nft.LogGroup) and writes a ConnRecord a packet to w until ctx ends.
func watchRefused(ctx context.Context, anchor string, w io.Writer, names *recent, logf func(string, ...any)) error {
	nf, err := nflog.Open(&nflog.Config{Group: nft.LogGroup, Copymode: nflog.CopyPacket, Bufsize: 128})
	if err != nil {
		return fmt.Errorf("reading the firewall's log (NFLOG group %d): %w", nft.LogGroup, err)
	}
	hook := func(a nflog.Attribute) int {
		if a.Payload == nil {
			return 0
		}
		src, dst, proto, port, ok := parsePacket(*a.Payload)
		if !ok {
			return 0
		}
		rec := ConnRecord{Time: time.Now().UTC(), Client: src, Addr: dst, Proto: proto, Port: port, Names: names.of(dst)}
		if a.Timestamp != nil {
			rec.Time = a.Timestamp.UTC()
		}
		b, err := json.Marshal(rec)
		if err == nil {
			w.Write(append(b, '\n'))
		}
		return 0
	}
	errFn := func(err error) int {
		if ctx.Err() != nil {
			return 1
		}
		logf("reading the firewall's log: %v", err)
		return 0
	}
	if err := nf.RegisterWithErrorFunc(ctx, hook, errFn); err != nil {
		nf.Close()
		return fmt.Errorf("reading the firewall's log (NFLOG group %d): %w", nft.LogGroup, err)
	}
	go func() {
		<-ctx.Done()
		nf.Close()
	}()
	return nil
}

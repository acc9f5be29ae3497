package app

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bitfield/script"
	"go4.org/netipx"

	"github.com/VerilyPete/claudecontainer/internal/atomicfile"
)

// CloudFront's ranges are in AWS's published list (service CLOUDFRONT),
// which `mage allow` reads for its warning and keeps for a week.
const (
	awsRangesURL   = "https://ip-ranges.amazonaws.com/ip-ranges.json"
	awsRangesLimit = 16 << 20 // the 2026 document is a few MB
	cloudFrontFile = "cloudfront-ranges.txt"
	cloudFrontAge  = 7 * 24 * time.Hour
)

// awsRanges is the part of ip-ranges.json read here. Its two lists differ
// only in the name of the prefix's field.
type awsRanges struct {
	Prefixes     []awsPrefix `json:"prefixes"`
	IPv6Prefixes []awsPrefix `json:"ipv6_prefixes"`
}

type awsPrefix struct {
	IPPrefix   string `json:"ip_prefix"`
	IPv6Prefix string `json:"ipv6_prefix"`
	Service    string `json:"service"`
}

// cloudFront returns CloudFront's ranges: from the cache directory when the
// copy there is younger than a week, fetched otherwise (and kept), the old
// copy when the fetch fails, nil when there is none.
func (e *env) cloudFront(ctx context.Context) *netipx.IPSet {
	path := filepath.Join(e.cfg.CacheDir, cloudFrontFile)
	fi, err := os.Stat(path)
	if err != nil || time.Since(fi.ModTime()) > cloudFrontAge {
		if list, ferr := fetchCloudFront(ctx, cmp.Or(e.sourceURLs["cloudfront"], awsRangesURL)); ferr == nil {
			err := os.MkdirAll(e.cfg.CacheDir, 0o700)
			if err == nil {
				err = atomicfile.Write(path, list, 0o600)
			}
			if err != nil {
				e.note("cannot keep CloudFront's ranges in %s (%v): no warning for them", e.cfg.CacheDir, err)
			}
		} else {
			e.note("cannot read CloudFront's ranges (%v): no warning for them", ferr)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var b netipx.IPSetBuilder
	for _, l := range strings.Fields(string(data)) {
		if p, err := netip.ParsePrefix(l); err == nil {
			b.AddPrefix(p.Masked())
		}
	}
	set, _ := b.IPSet() // it holds only valid prefixes
	return set
}

// fetchCloudFront reads AWS's list and returns CloudFront's prefixes, one a
// line, as the cache file holds them; a malformed prefix is an error, as is
// a document with none.
func fetchCloudFront(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	p := script.NewPipe().WithHTTPClient(&http.Client{Timeout: 10 * time.Second}).Do(req)
	defer p.Close()
	body, err := io.ReadAll(io.LimitReader(p, awsRangesLimit+1))
	if err == nil {
		err = p.Error()
	}
	if err != nil {
		return nil, err
	}
	if len(body) > awsRangesLimit {
		return nil, fmt.Errorf("document larger than %d bytes", awsRangesLimit)
	}
	var doc awsRanges
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("malformed document: %v", err)
	}
	var out []byte
	for i, list := range [][]awsPrefix{doc.Prefixes, doc.IPv6Prefixes} {
		for _, x := range list {
			if x.Service != "CLOUDFRONT" {
				continue
			}
			// Each list holds its own family, in its own field.
			s, other, v6 := x.IPPrefix, x.IPv6Prefix, i == 1
			if v6 {
				s, other = other, s
			}
			p, err := netip.ParsePrefix(s)
			if err != nil || other != "" || p.Addr().Zone() != "" || p.Addr().Is6() != v6 {
				return nil, fmt.Errorf("malformed document: prefix %q", s+other)
			}
			out = fmt.Appendln(out, p.Masked())
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no CLOUDFRONT prefix in the document")
	}
	return out, nil
}

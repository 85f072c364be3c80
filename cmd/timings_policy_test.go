package cmd

import (
	"testing"
	"time"

	"github.com/docker-credential-gcp/docker-credential-gcp/token"
)

// The kubelet's cacheDuration and dockerconfig --refresh's rewrite both
// stay within the validity of the least-lived token the cache hands out:
// one at the policy's reuse threshold, min(M, max(¾·life, min(5 min,
// 0.9·life))).
func TestTimingsHoldWithReusePolicy(t *testing.T) {
	cache := token.NewFileCache("")
	now := time.Now()
	opts := RefreshOptions{Jitter: -1}.withDefaults()
	for _, tt := range []struct{ life, left time.Duration }{
		{time.Hour, 45 * time.Minute},
		{20 * time.Minute, 15 * time.Minute},
		{6 * time.Minute, 5 * time.Minute},
		{5 * time.Minute, 4*time.Minute + 30*time.Second},
		{120 * time.Second, 108 * time.Second},
	} {
		life := tt.life
		left := cache.ReuseThreshold(life) // the least a handed-out token has
		if left != tt.left {
			t.Errorf("%v tokens are handed out with down to %v left, want %v", life, left, tt.left)
		}
		expiry := now.Add(left)

		kubelet := kubeletCacheDuration(expiry, now)
		if kubelet <= 0 || kubelet >= left {
			t.Errorf("%v tokens handed out with %v left: kubelet cacheDuration %v, want within the token's validity", life, left, kubelet)
		}
		if left > kubeletCacheMargin+kubeletMinCache && kubelet != left-kubeletCacheMargin {
			t.Errorf("%v tokens: kubelet cacheDuration %v, want %v (%v before expiry)", life, kubelet, left-kubeletCacheMargin, kubeletCacheMargin)
		}

		wait := nextRefresh(opts, expiry, now)
		if wait >= left {
			t.Errorf("%v tokens handed out with %v left: the file is rewritten after %v, after the token expired", life, left, wait)
		}
		// By the rewrite the cached token is under the reuse threshold,
		// so the rewrite carries a new token rather than the old one.
		if remaining := left - wait; remaining >= cache.ReuseThreshold(life) {
			t.Errorf("%v tokens: at the rewrite the old token has %v left and would be reused", life, remaining)
		}
	}
}

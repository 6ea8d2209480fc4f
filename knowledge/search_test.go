package knowledge_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apacops/opsbot/internal/testdb"
	"github.com/apacops/opsbot/knowledge"
)

// fixedNow is the instant the tests stand on.
var fixedNow = time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)

func mustIndex(tb testing.TB, dir string) *knowledge.Index {
	tb.Helper()
	ix := knowledge.New(testdb.New(tb), func() time.Time { return fixedNow })
	if dir != "" {
		if _, err := ix.Sync(context.Background(), dir, nil); err != nil {
			tb.Fatalf("sync %s: %v", dir, err)
		}
	}
	return ix
}

// labelled are realistic ops questions and the sections (document path and
// section title) that answer them.
var labelled = []struct {
	question string
	path     string
	sections []string // any of these is a right answer
}{
	{"patroni shows no leader, how do I fail over to db-sg-02?", "database-failover.md", []string{"Unplanned failover", "Check the cluster state"}},
	{"how do I do a planned switchover of the primary for kernel patching", "database-failover.md", []string{"Planned switchover"}},
	{"the old primary db-sg-01 is back, how does it rejoin the cluster", "database-failover.md", []string{"Rejoin the old primary"}},
	{"No space left on device on build-sg-01", "disk-full.md", []string{"Symptoms", "Clean up container images"}},
	{"deleted files are still using disk space", "disk-full.md", []string{"Find what is using the space"}},
	{"how to grow an EBS volume and run xfs_growfs", "disk-full.md", []string{"Grow the EBS volume"}},
	{"when does the TLS certificate for api.pay-sg.example.com expire?", "tls-certificate-renewal.md", []string{"Check when a certificate expires"}},
	{"force cert-manager to renew a certificate", "tls-certificate-renewal.md", []string{"Renew with cert-manager"}},
	{"lets encrypt rateLimited error when issuing a cert", "tls-certificate-renewal.md", []string{"Troubleshooting"}},
	{"pod keeps restarting with exit code 137", "k8s-crashloopbackoff.md", []string{"Exit code 137: OOMKilled"}},
	{"how do I see the logs of the previous crashed container", "k8s-crashloopbackoff.md", []string{"Read the logs of the crashed container"}},
	{"CreateContainerConfigError secret payments-db not found", "k8s-crashloopbackoff.md", []string{"Missing config or secret"}},
	{"how do I roll back a bad deployment in kubernetes", "k8s-crashloopbackoff.md", []string{"Roll back a bad deployment"}},
	{"payment gateway is returning 502s in ap-southeast-1", "payment-gateway-5xx.md", []string{"Symptoms", "Triage in the first five minutes"}},
	{"gateway logs show ERR_CONN_RESET and pool timeout", "payment-gateway-5xx.md", []string{"Connection pool exhaustion"}},
	{"merchants get PGW-5003, is the acquirer down?", "payment-gateway-5xx.md", []string{"Upstream acquirer outage"}},
	{"how do we fail over payments traffic to Sydney", "payment-gateway-5xx.md", []string{"Fail over to ap-southeast-2 (Sydney)"}},
	{"how does a new starter get VPN access", "vpn-access-new-staff.md", []string{"Request access"}},
	{"GlobalProtect says Gateway authentication failed", "vpn-access-new-staff.md", []string{"Troubleshooting"}},
	{"who is on call in Manila at night, what are the rotation hours", "oncall-escalation.md", []string{"Rotation hours"}},
	{"the primary on-call did not acknowledge the page, how do I escalate?", "oncall-escalation.md", []string{"How to escalate"}},
	{"what counts as a SEV1", "oncall-escalation.md", []string{"Severity levels"}},
	{"kafka consumer lag is high for ledger-writer", "kafka-consumer-lag.md", []string{"Check the lag", "Symptoms"}},
	{"reset kafka offsets to a timestamp to replay events", "kafka-consumer-lag.md", []string{"Replay from a point in time"}},
	{"DNS change not propagated yet, dig still shows the old IP", "dns-propagation.md", []string{"Check propagation"}},
	{"getting SERVFAIL when resolving our domain", "dns-propagation.md", []string{"NXDOMAIN and SERVFAIL"}},
	{"how do I rotate the database password for app_payments", "secret-rotation.md", []string{"Rotate a database password"}},
	{"an AWS access key leaked on GitHub, what do I do", "secret-rotation.md", []string{"A secret has leaked", "Rotate AWS access keys"}},
}

// unanswerable are questions the fixture runbooks do not cover.
var unanswerable = []string{
	"how do I book annual leave",
	"what is the office wifi password",
	"where can I get lunch near the Makati office",
	"how do I expense a taxi ride",
}

func sectionTitle(r knowledge.Result) string {
	if i := strings.LastIndex(r.Section, " > "); i >= 0 {
		return r.Section[i+len(" > "):]
	}
	return r.Section
}

func TestSearchRecallAt3(t *testing.T) {
	ix := mustIndex(t, "testdata/runbooks")
	ctx := context.Background()
	hits := 0
	answered := 0
	for _, q := range labelled {
		res, err := ix.Search(ctx, q.question, 3)
		if err != nil {
			t.Fatalf("Search(%q): %v", q.question, err)
		}
		found := -1
		for i, r := range res {
			for _, s := range q.sections {
				if r.Path == q.path && sectionTitle(r) == s {
					found = i
				}
			}
			if found >= 0 {
				break
			}
		}
		if found >= 0 {
			hits++
		}
		if ix.Answered(res) {
			answered++
		}
		var got []string
		for _, r := range res {
			got = append(got, r.Path+"#"+sectionTitle(r)+" "+strconvF(r.Score))
		}
		t.Logf("rank %d for %q: %v", found+1, q.question, got)
	}
	recall := float64(hits) / float64(len(labelled))
	t.Logf("recall@3 = %.3f (%d/%d), answered above threshold %d/%d", recall, hits, len(labelled), answered, len(labelled))
	if recall < 0.8 {
		t.Errorf("recall@3 = %.3f, want >= 0.8", recall)
	}
	if float64(answered) < 0.8*float64(len(labelled)) {
		t.Errorf("answered %d of %d labelled questions, want >= 80%%", answered, len(labelled))
	}
	for _, q := range unanswerable {
		res, err := ix.Search(ctx, q, 3)
		if err != nil {
			t.Fatalf("Search(%q): %v", q, err)
		}
		if len(res) > 0 {
			t.Logf("unanswerable %q: top %s score %.3f", q, res[0].Path+"#"+sectionTitle(res[0]), res[0].Score)
		}
		if ix.Answered(res) {
			t.Errorf("Answered(%q) = true (top %s score %.3f), want false", q, res[0].Path+"#"+sectionTitle(res[0]), res[0].Score)
		}
	}
}

func strconvF(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) }

package s3

import "github.com/prometheus/client_golang/prometheus"

// More of the Store's series: its part-buffer budget (memory.go) and its janitor
// (janitor.go). They are read when scraped, from the counters the Store
// keeps anyway.
var (
	descMemoryLimit = prometheus.NewDesc("wharf_storage_upload_memory_limit_bytes",
		"Budget of the part buffers of all S3 uploads ([storage] upload_memory; 0: no bound).", nil, nil)
	descMemoryUsed = prometheus.NewDesc("wharf_storage_upload_memory_bytes",
		"Part-buffer memory reserved by running S3 uploads.", nil, nil)
	descMemoryPeak = prometheus.NewDesc("wharf_storage_upload_memory_peak_bytes",
		"Most part-buffer memory ever reserved at once.", nil, nil)
	descMemoryMapped = prometheus.NewDesc("wharf_storage_upload_memory_mapped_bytes",
		"Part-buffer memory held from the kernel, in use or idle; idle buffers go back within 10 s.", nil, nil)
	descMemoryWaits = prometheus.NewDesc("wharf_storage_upload_memory_waits_total",
		"Part-memory reservations that had to wait (an upload reserves its first chunk, then each part).", nil, nil)
	descMemoryRefusals = prometheus.NewDesc("wharf_storage_upload_memory_refusals_total",
		"S3 uploads refused (450) or cut (451) because part memory stayed spent.", nil, nil)
	descAborted = prometheus.NewDesc("wharf_storage_uploads_aborted_total",
		"Incomplete multipart uploads aborted after their session was gone, by reason: abandoned (found by a "+
			"sweep: left by a wharf that died, or older), retried (an abort that had failed, done later).",
		[]string{"reason"}, nil)
	descAbortsPending = prometheus.NewDesc("wharf_storage_upload_aborts_pending",
		"Aborts of incomplete multipart uploads that failed and wait to be tried again.", nil, nil)
)

// Collector returns the Store's metrics, for a Prometheus registry.
func (s *Store) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Store }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMemoryLimit, descMemoryUsed, descMemoryPeak, descMemoryMapped,
		descMemoryWaits, descMemoryRefusals, descAborted, descAbortsPending} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	m := c.s.mem.stats()
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descMemoryLimit, m.limit)
	gauge(descMemoryUsed, m.used)
	gauge(descMemoryPeak, m.peak)
	gauge(descMemoryMapped, m.mapped)
	counter(descMemoryWaits, m.waits)
	counter(descMemoryRefusals, m.refused)
	var j janitorStats
	if c.s.jan != nil {
		j = c.s.jan.stats()
	}
	counter(descAborted, j.abandoned, "abandoned")
	counter(descAborted, j.retried, "retried")
	gauge(descAbortsPending, int64(j.pending))
}

#include "metrics/metrics.h"

namespace turnout::metrics {
struct PrometheusWriter::Family {};
PrometheusWriter::PrometheusWriter(std::string* out) : out_(out) {}
PrometheusWriter::~PrometheusWriter() = default;
}  // namespace turnout::metrics

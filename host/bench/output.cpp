// `gac bench`'s results as one JSON document or as a table.
#include "host/bench/output.h"
#include "host/report/format.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>
#include <thread>

namespace gac {
namespace {

using nlohmann::json;

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  return "unknown";
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

json nullable(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// The ceiling of a measurement's device, and its SGEMM figure.
const Ceiling& ceiling_of(const BenchResults& r, const Measurement& m) {
  return m.backend == "cuda" ? r.cuda_ceiling : r.cpu_ceiling;
}
const Ceiling& sgemm_of(const BenchResults& r, const Measurement& m) {
  return m.backend == "cuda" ? r.cuda_ceiling : r.cpu_sgemm;
}

double fraction(const Ceiling& c, const Measurement& m) { return c.available() ? m.gflops() / c.best() : NAN; }

// The plain early-rejection row measured beside a nested one (same scenario, n, backend).
const Measurement* plain_row(const BenchResults& r, const Measurement& nested) {
  for (const Measurement& m : r.measurements)
    if (m.scenario == nested.scenario && m.n == nested.n && m.backend == nested.backend && m.early_reject) return &m;
  return nullptr;
}

// Effective samples per second over the plain row's perfect draws per second (NaN: no plain hits).
double nested_gain(const BenchResults& r, const Measurement& nested) {
  const Measurement* plain = plain_row(r, nested);
  return plain && plain->hits > 0 ? nested.effective_per_s() / (plain->hits / plain->seconds) : NAN;
}

unsigned cores() { return std::max(1u, std::thread::hardware_concurrency()); }

}  // namespace

void write_bench_json(const BenchOptions& opts, const BenchResults& r, std::ostream& out) {
  const char* rss_definition =
      "the process's peak resident set during the measurement (VmHWM, reset just before it); null where the "
      "kernel does not allow the reset";
  const char* ceiling_definition =
      "ceiling.cpu: the best call of the FP32 FMA peak kernel (the widest vectors the CPU runs, on every thread the "
      "bench uses); ceiling.cuda: the best cuBLAS SGEMM call. sgemm.cpu: the best OpenBLAS SGEMM call; a row's "
      "sgemm_gflops is its device's (for cuda, the ceiling)";
  const char* roofline_definition =
      "early-rejection rows: 1 / (parameters / uniforms_per_s + examples per draw / n * (1 / full-evaluation "
      "draws_per_s - parameters / uniforms_per_s)), all measured here on the same backend and scenario";
  auto ceiling_json = [](const Ceiling& c) {
    json j = {{"available", c.available()}, {"gflops", nullable(c.best())}, {"what", c.any().what}};
    if (!c.available()) j["why_not"] = c.why_not();
    j["before_gflops"] = nullable(best_of(c.before));
    j["after_gflops"] = nullable(best_of(c.after));
    j["slowest_call_gflops"] = nullable(c.slowest());
    j["calls"] = c.calls().size();
    if (!c.any().warning.empty()) j["warning"] = c.any().warning;
    if (c.any().fp32_peak_gflops > 0) j["fp32_peak_gflops"] = c.any().fp32_peak_gflops;
    return j;
  };
  json doc;
  doc["gac_version"] = GAC_VERSION;
  doc["date"] = utc_now();
  doc["machine"] = {{"cpu_model", cpu_model()}, {"cores", cores()}, {"threads", opts.threads > 0 ? opts.threads : static_cast<int>(cores())}};
  doc["ceiling"] = {{"cpu", ceiling_json(r.cpu_ceiling)}};
  if (r.want_cuda) doc["ceiling"]["cuda"] = ceiling_json(r.cuda_ceiling);
  doc["sgemm"] = {{"cpu", ceiling_json(r.cpu_sgemm)}};
  doc["ceiling_definition"] = ceiling_definition;
  doc["seconds_per_measurement"] = opts.seconds;
  doc["rss_definition"] = rss_definition;
  doc["roofline_definition"] = roofline_definition;
  json rows = json::array();
  for (const Measurement& m : r.measurements) {
    json row = {{"scenario", m.scenario},
                {"data", m.data},
                {"n", m.n},
                {"backend", m.backend},
                {"backend_description", m.backend_description},
                {"early_reject", m.early_reject},
                {"params", m.n_params},
                {"flops_per_example", m.flops_per_example},
                {"batch", m.batch},
                {"calls", m.calls},
                {"seconds", m.seconds},
                {"draws", m.draws},
                {"examples", m.examples},
                {"perfect_draws", m.hits},
                {"draws_per_s", m.draws_per_s()},
                {"examples_per_s", m.examples_per_s()},
                {"gflops", m.gflops()},
                {"ceiling_gflops", nullable(ceiling_of(r, m).best())},
                {"fraction_of_ceiling", nullable(fraction(ceiling_of(r, m), m))},
                {"sgemm_gflops", nullable(sgemm_of(r, m).best())},
                {"fraction_of_sgemm", nullable(fraction(sgemm_of(r, m), m))},
                {"uniforms_per_s", nullable(m.uniforms_per_s)},
                {"roofline_draws_per_s", nullable(draw_roofline(m, r.measurements))},
                {"fraction_of_roofline", nullable(m.draws_per_s() / draw_roofline(m, r.measurements))},
                {"rss_mib", nullable(m.rss_mib)}};
    if (ceiling_of(r, m).any().fp32_peak_gflops > 0) row["fraction_of_fp32_peak"] = m.gflops() / ceiling_of(r, m).any().fp32_peak_gflops;
    rows.push_back(row);
  }
  doc["measurements"] = rows;
  if (!r.nested.empty()) {
    json nested = json::array();
    for (const Measurement& m : r.nested) {
      const Measurement* plain = plain_row(r, m);
      nested.push_back({{"scenario", m.scenario},
                        {"data", m.data},
                        {"n", m.n},
                        {"backend", m.backend},
                        {"heads", m.heads},
                        {"seconds", m.seconds},
                        {"pairs", m.draws},
                        {"pairs_per_s", m.draws_per_s()},
                        {"perfect_pairs", m.hits},
                        {"same_body", m.same_body},
                        {"perfect_per_body", m.draws ? static_cast<double>(m.hits) * m.heads / m.draws : 0.0},
                        {"design_effect", m.design_effect()},
                        {"effective_per_s", m.effective_per_s()},
                        {"plain_draws_per_s", plain ? json(plain->draws_per_s()) : json(nullptr)},
                        {"plain_perfect_per_s", plain ? json(plain->hits / plain->seconds) : json(nullptr)},
                        {"gain", nullable(nested_gain(r, m))}});
    }
    doc["nested"] = nested;
    doc["nested_definition"] =
        "pairs of nested sampling (docs/nested.md), early rejection on; design_effect of the perfect pairs with bodies "
        "as clusters; effective_per_s = perfect pairs / design_effect per second; gain = effective_per_s over the "
        "plain early-rejection row's perfect draws per second, measured in the same run";
  }
  out << doc.dump(2) << "\n";
}

// Nested sampling beside plain draws: pairs/s and effective perfect samples/s.
void write_nested_table(const BenchResults& r, std::ostream& out) {
  char line[256];
  std::snprintf(line, sizeof line, "%-9s %3s %-10s %6s %9s %9s %9s %8s %6s %11s %8s\n", "nested", "n", "backend", "heads",
                "pairs/s", "x plain", "perfect/s", "per body", "deff", "effective/s", "gain");
  out << line;
  for (const Measurement& m : r.nested) {
    const Measurement* plain = plain_row(r, m);
    const double gain = nested_gain(r, m);
    std::snprintf(line, sizeof line, "%-9s %3d %-10s %6u %9s %9s %9s %8s %6s %11s %8s\n", m.scenario.c_str(), m.n,
                  m.backend.c_str(), m.heads, human_count(m.draws_per_s()).c_str(),
                  plain ? fixed(m.draws_per_s() / plain->draws_per_s(), 1).c_str() : "-",
                  human_count(m.hits / m.seconds).c_str(),
                  fixed(m.draws ? static_cast<double>(m.hits) * m.heads / m.draws : 0.0, 3).c_str(),
                  fixed(m.design_effect(), 2).c_str(), human_count(m.effective_per_s()).c_str(),
                  std::isfinite(gain) ? (fixed(gain, 1) + "x").c_str() : "-");
    out << line;
  }
  out << "nested: perfect pairs, bodies as clusters (docs/nested.md); per body = perfect pairs per body; effective/s =\n"
         "perfect/s / deff; gain = effective/s over the plain early-on row's perfect draws/s in this run ('-': no\n"
         "plain perfect draw in its time). x plain = pairs/s over the plain row's draws/s.\n\n";
}

void write_bench_table(const BenchOptions& opts, const BenchResults& r, std::ostream& out) {
  out << "gac bench: " << cpu_model() << ", " << cores() << " cores; " << opts.seconds << " s per measurement\n";
  auto ceiling_line = [&](const char* name, const Ceiling& c) {
    out << name << ": ";
    if (!c.available()) {
      out << "unavailable: " << c.why_not() << "\n";
      return;
    }
    out << c.any().what << ": " << fixed(c.best(), 1) << " GFLOP/s, the best of " << c.calls().size()
        << " calls (best before " << fixed(best_of(c.before), 1) << ", after " << fixed(best_of(c.after), 1)
        << "; slowest call " << fixed(c.slowest(), 1) << ")";
    if (c.any().fp32_peak_gflops > 0) out << "; FP32 peak " << fixed(c.any().fp32_peak_gflops, 0) << " GFLOP/s";
    out << "\n";
    if (!c.any().warning.empty()) out << "  warning: " << c.any().warning << "\n";
  };
  if (r.want_cpu) {
    ceiling_line("ceiling (cpu)", r.cpu_ceiling);
    ceiling_line("sgemm (cpu)", r.cpu_sgemm);
  }
  if (r.want_cuda) ceiling_line("ceiling (cuda)", r.cuda_ceiling);
  out << "\n";

  auto percent = [](double v) { return std::isfinite(v) ? fixed(100 * v, 1) + "%" : std::string("-"); };
  char line[256];
  std::snprintf(line, sizeof line, "%-9s %3s %-10s %-5s %9s %11s %9s %7s %7s %7s %8s\n", "scenario", "n", "backend",
                "early", "draws/s", "ex-evals/s", "GFLOP/s", "%ceil", "%sgemm", "%roof", "RSS MiB");
  out << line;
  for (const Measurement& m : r.measurements) {
    std::snprintf(line, sizeof line, "%-9s %3d %-10s %-5s %9s %11s %9s %7s %7s %7s %8s\n", m.scenario.c_str(), m.n,
                  m.backend.c_str(), m.early_reject ? "on" : "off", human_count(m.draws_per_s()).c_str(),
                  human_count(m.examples_per_s()).c_str(), fixed(m.gflops(), 2).c_str(),
                  percent(fraction(ceiling_of(r, m), m)).c_str(), percent(fraction(sgemm_of(r, m), m)).c_str(),
                  percent(m.draws_per_s() / draw_roofline(m, r.measurements)).c_str(), fixed(m.rss_mib, 1).c_str());
    out << line;
  }
  out << "\n";
  if (!r.nested.empty()) write_nested_table(r, out);
  for (const auto& [name, what] : r.legend) out << name << ": " << what << "\n";
  for (const auto& [label, description] : r.backends) out << label << ": " << description << "\n";
  std::vector<std::string> generation_lines;
  for (const Measurement& m : r.measurements) {
    const std::string g = m.scenario + " " + m.backend + " " +
                          (std::isfinite(m.uniforms_per_s) ? human_count(m.uniforms_per_s) : std::string("-"));
    if (std::find(generation_lines.begin(), generation_lines.end(), g) == generation_lines.end()) generation_lines.push_back(g);
  }
  out << "generation alone, uniforms/s:";
  for (const std::string& g : generation_lines) out << "  " << g;
  out << "\n"
         "early on: stop at a draw's first misclassified example; off: every example of every draw (full evaluation).\n"
         "GFLOP/s counts the example evaluations done; %ceil is that over the ceiling (cpu: the FP32 FMA peak, the best\n"
         "call of its kernel on every thread; cuda: the best SGEMM call) and %sgemm over the best SGEMM call. The CPU\n"
         "target (SPEC.md): full evaluation (early off) at >= 80% of the FMA peak. %roof is draws/s over the draw roofline\n"
         "(early rows: generation at the rate above plus the examples evaluated at the full rows' forward rate); RSS is\n"
         "the process's peak resident set during the measurement. Ratios to PyTorch: bench/compare.\n";
}

}  // namespace gac

#include "host/backends/multi_backend.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>

#include "gac/error.h"

namespace gac {
namespace {

// One host thread that runs the jobs given to it, one at a time.
class DeviceThread {
 public:
  DeviceThread() : thread_([this] { loop(); }) {}
  ~DeviceThread() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  DeviceThread(const DeviceThread&) = delete;
  DeviceThread& operator=(const DeviceThread&) = delete;

  void post(std::function<void()> job) {
    {
      std::lock_guard lock(mutex_);
      job_ = std::move(job);
      error_ = nullptr;
    }
    wake_.notify_all();
  }
  // Waits for the job posted last; its exception, if it threw.
  std::exception_ptr wait() {
    std::unique_lock lock(mutex_);
    done_.wait(lock, [&] { return !job_; });
    return std::exchange(error_, nullptr);
  }

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return job_ || stop_; });
      if (!job_) return;
      lock.unlock();
      std::exception_ptr error;
      try {
        job_();
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      job_ = nullptr;
      error_ = error;
      done_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::function<void()> job_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest is ready
};

std::string what_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "unknown error";
  }
}

class MultiBackend final : public Backend {
 public:
  MultiBackend(std::vector<BackendFactory> factories, std::vector<double> weights) : parts_(factories.size()) {
    if (factories.empty()) throw Error("multi-device backend: no devices");
    for (size_t k = 0; k < parts_.size(); ++k) {
      parts_[k].weight = k < weights.size() && weights[k] > 0 ? weights[k] : 1.0;
      parts_[k].thread = std::make_unique<DeviceThread>();
    }
    on_every_part([&](size_t k) { parts_[k].backend = factories[k](); }, "cannot be used");
  }
  ~MultiBackend() override {
    on_every_part([&](size_t k) { parts_[k].backend.reset(); }, nullptr);  // released where it was made
  }

  std::string name() const override { return parts_[0].backend->name(); }
  std::string description() const override {
    std::string d = std::to_string(parts_.size()) + " devices:";
    for (size_t k = 0; k < parts_.size(); ++k) d += (k ? "; " : " ") + parts_[k].backend->description();
    return d;
  }
  uint64_t preferred_batch() const override {
    uint64_t sum = 0;
    for (const Part& p : parts_) sum += p.backend->preferred_batch();
    return sum;
  }

  void begin_stream(const StreamTask& task) override {
    on_every_part([&](size_t k) { parts_[k].backend->begin_stream(task); }, "failed");
  }

  EvalCounts evaluate(uint64_t first, uint64_t count, std::vector<Hit>& hits) override {
    const std::vector<uint64_t> offsets = deal(count);
    on_every_part(
        [&](size_t k) {
          Part& p = parts_[k];
          p.hits.clear();
          p.counts = {};
          const uint64_t n = offsets[k + 1] - offsets[k];
          if (n == 0) return;
          const auto start = std::chrono::steady_clock::now();
          p.counts = p.backend->evaluate(first + offsets[k], n, p.hits);
          const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          const double rate = n / std::max(seconds, 1e-6);  // the next calls' shares follow the speed
          p.rate = p.rate > 0 ? 0.5 * (p.rate + rate) : rate;
        },
        "failed");
    EvalCounts counts;
    for (const Part& p : parts_) {
      hits.insert(hits.end(), p.hits.begin(), p.hits.end());
      counts.draws += p.counts.draws;
      counts.examples += p.counts.examples;
    }
    return counts;
  }

  std::vector<TestScore> score_test(const std::vector<uint64_t>& draws) override {
    const std::vector<uint64_t> offsets = deal(draws.size());
    on_every_part(
        [&](size_t k) {
          Part& p = parts_[k];
          p.scores.clear();
          if (offsets[k + 1] == offsets[k]) return;
          p.scores = p.backend->score_test(
              std::vector<uint64_t>(draws.begin() + offsets[k], draws.begin() + offsets[k + 1]));
        },
        "failed");
    std::vector<TestScore> out;
    for (const Part& p : parts_) out.insert(out.end(), p.scores.begin(), p.scores.end());
    return out;
  }

  bool generate_only(uint64_t first, uint64_t count) override {
    const std::vector<uint64_t> offsets = deal(count);
    std::vector<char> ok(parts_.size(), 1);
    on_every_part(
        [&](size_t k) {
          if (offsets[k + 1] > offsets[k])
            ok[k] = parts_[k].backend->generate_only(first + offsets[k], offsets[k + 1] - offsets[k]);
        },
        "failed");
    return std::ranges::all_of(ok, [](char c) { return c != 0; });
  }

 private:
  struct Part {
    std::unique_ptr<DeviceThread> thread;
    std::unique_ptr<Backend> backend;
    double weight = 1;  // share of a range until every device's speed is measured
    double rate = 0;    // draws per second (smoothed over calls); 0: not measured yet
    std::vector<Hit> hits;
    EvalCounts counts;
    std::vector<TestScore> scores;
  };

  // Part k takes [offsets[k], offsets[k + 1]) of `count` items,
  // in proportion to its speed (its weight until every speed is known), at
  // least 2% of the fastest's share, so that a slow call never starves it.
  std::vector<uint64_t> deal(uint64_t count) const {
    const bool measured = std::ranges::all_of(parts_, [](const Part& p) { return p.rate > 0; });
    std::vector<double> w;
    for (const Part& p : parts_) w.push_back(measured ? p.rate : p.weight);
    const double most = *std::ranges::max_element(w);
    double total = 0;
    for (double& x : w) total += x = std::max(x, 0.02 * most);
    std::vector<uint64_t> offsets(parts_.size() + 1, 0);
    double before = 0;
    for (size_t k = 0; k < parts_.size(); ++k) {
      before += w[k];
      offsets[k + 1] = k + 1 == parts_.size() ? count
                                              : std::min(count, static_cast<uint64_t>(count * (before / total)));
      offsets[k + 1] = std::max(offsets[k + 1], offsets[k]);
    }
    return offsets;
  }

  // Runs job(k) for every part at once, each on its own thread; when any
  // throws, throws one error naming the first such device ("device k
  // (description) <verb>: what"), after all have finished.
  void on_every_part(const std::function<void(size_t)>& job, const char* verb) {
    for (size_t k = 0; k < parts_.size(); ++k) parts_[k].thread->post([&job, k] { job(k); });
    std::string error;
    for (size_t k = 0; k < parts_.size(); ++k)
      if (const std::exception_ptr e = parts_[k].thread->wait(); e && error.empty() && verb)
        error = "device " + std::to_string(k) + (parts_[k].backend ? " (" + parts_[k].backend->description() + ")" : "") +
                " " + verb + ": " + what_of(e);
    if (!error.empty()) throw Error(error);
  }

  std::vector<Part> parts_;
};

}  // namespace

std::unique_ptr<Backend> make_multi_backend(std::vector<BackendFactory> devices, std::vector<double> weights) {
  return std::make_unique<MultiBackend>(std::move(devices), std::move(weights));
}

}  // namespace gac

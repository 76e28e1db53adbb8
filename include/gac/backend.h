// The backend contract: evaluate ranges of draws of one parameter stream on a
// resident training set, and score accepted draws on the test set. The CPU
// and CUDA backends implement it; the orchestrator and the backend test suite
// only see this interface.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gac/dataset.h"
#include "gac/loss.h"
#include "gac/model.h"
#include "gac/philox.h"
#include "gac/prior.h"

namespace gac {

// Everything fixed for one (seed, n, repeat, shard) stream.
struct StreamTask {
  ModelSpec model;
  PriorSpec prior;
  StreamKey key;
  LossKind loss = LossKind::normalized;
  bool early_reject = true;
  std::vector<float> bin_edges;  // increasing; bin j is (edges[j], edges[j+1]]
  Examples train;
  Examples test;
  SplitSource source;  // the classes and rows the examples came from (recorded; backends ignore it)
};

// A draw that classifies every training example correctly.
struct Hit {
  uint64_t draw;
  float loss;  // mean training loss
  int32_t bin;  // -1: the loss is outside every bin
};

struct EvalCounts {
  uint64_t draws = 0;
  uint64_t examples = 0;  // example evaluations done (smaller with early rejection)
};

struct TestScore {
  double accuracy = 0;
  double loss = 0;  // mean over the test set, same loss kind as training
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;         // "cpu" or "cuda"
  virtual std::string description() const = 0;  // threads, device, ...

  // Makes `task` current; its data stays resident until the next call.
  virtual void begin_stream(const StreamTask& task) = 0;

  // Checks draws [first, first + count) and appends every perfect draw to
  // `hits`, in increasing draw order.
  virtual EvalCounts evaluate(uint64_t first, uint64_t count, std::vector<Hit>& hits) = 0;

  // Test accuracy and loss of each given draw of the current stream.
  virtual std::vector<TestScore> score_test(const std::vector<uint64_t>& draws) = 0;

  // Generates the parameters of draws [first, first + count) of the current
  // stream as evaluate() does, and discards them: `gac bench` times this for
  // the draw roofline. False when the backend cannot do it alone.
  virtual bool generate_only(uint64_t first, uint64_t count) {
    (void)first;
    (void)count;
    return false;
  }

  // Draws per evaluate() call that keep this backend busy on the current
  // stream (the run loop's batch unless exec.batch sets one).
  virtual uint64_t preferred_batch() const { return 65536; }
};

// Picks a backend by name: "cpu", "cuda" or "auto" (CUDA when a usable
// device exists, else the CPU). `note` explains an automatic choice of the
// CPU when a GPU is there but unusable (`gac info` says why there is none).
// `devices` ("all" or a list as "0,2", exec.devices) are the GPUs driven
// together (host/backends/multi_backend.h). Throws gac::Error for "cuda"
// without a usable device, and for a device that does not exist.
std::unique_ptr<Backend> make_backend(const std::string& kind, int threads, std::string* note = nullptr,
                                      const std::string& devices = "all");

// kernel: "auto" (the widest SIMD this CPU runs), "avx512", "avx2" or "scalar".
std::unique_ptr<Backend> make_cpu_backend(int threads, const std::string& kernel = "auto");
#if defined(GAC_HAVE_CUDA)
// nullptr when no usable device, with the reason; *no_gpu: the reason is only
// that this machine has no NVIDIA GPU or driver (nothing worth a note).
// Several `devices` ("all", "0,2") make one backend over all of them.
std::unique_ptr<Backend> make_cuda_backend(std::string* why_not, bool* no_gpu = nullptr,
                                           const std::string& devices = "0");
// One line per device; none, with the reason in *why_none, when there is none.
std::vector<std::string> cuda_device_descriptions(std::string* why_none = nullptr);
// Parameters of `draws` generated on the device (tests: bit-identity with the host).
std::vector<float> cuda_generate_params(const PriorSpec& prior, StreamKey key, const ModelSpec& m,
                                        const std::vector<uint64_t>& draws);
// Every layer's output on the device (tests; see device_trace_layers in host/backends/device_backend.h).
std::vector<float> cuda_trace_layers(const ModelSpec& m, const std::vector<float>& params, const std::vector<float>& X,
                                     int n);
#endif

}  // namespace gac

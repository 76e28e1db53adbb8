// Builds the layer list and the state_dict layout of each architecture.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <climits>
#include <cmath>

#include "gac/error.h"
#include "gac/model.h"
#include "gac/text.h"

namespace gac {
namespace {

// ModelSpec's counts and offsets are int32 (shared with the CUDA kernels):
// every count is made in 64 bits first and the model refused beyond this.
constexpr int64_t kMaxCount = INT32_MAX;

// Saturating arithmetic: an absurd config must not wrap around into a small count.
int64_t times(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}
int64_t plus(int64_t a, int64_t b) {
  int64_t r;
  return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r;
}

std::string count_text(int64_t v) { return v == INT64_MAX ? "more than " + grouped(INT64_MAX - 1) : grouped(v); }

// Counts everything in 64 bits; records tensors and layers only while every
// count fits ModelSpec, and finish() refuses the model when one does not.
class Builder {
 public:
  Builder(int64_t c, int64_t h, int64_t w) : c_(c), h_(h), w_(w) {
    activation_ = times(times(c, h), w);
    model_.spec.in_c = static_cast<int32_t>(std::min(c, kMaxCount));
    model_.spec.in_h = static_cast<int32_t>(std::min(h, kMaxCount));
    model_.spec.in_w = static_cast<int32_t>(std::min(w, kMaxCount));
    model_.spec.max_activation = static_cast<int32_t>(std::min(activation_, kMaxCount));
  }

  void dense(const std::string& name, int64_t out, bool bias, bool relu) {
    const int64_t in = times(times(c_, h_), w_);
    const int w_off = add_tensor(name + ".weight", {out, in}, true, in);
    const int b_off = bias ? add_tensor(name + ".bias", {out}, false, in) : -1;
    model_.flops_per_example += 2.0 * static_cast<double>(out) * static_cast<double>(in);
    push(LayerKind::dense, out, 1, 1, 0, w_off, b_off, relu);
  }

  void conv(const std::string& name, int64_t out, int k, bool relu) {
    if (h_ < k || w_ < k)
      throw Error("model: input of " + shape() + " is too small for the " + std::to_string(k) + "x" +
                  std::to_string(k) + " convolution " + name);
    const int64_t fan_in = times(c_, k * k), out_h = h_ - k + 1, out_w = w_ - k + 1;
    const int w_off = add_tensor(name + ".weight", {out, c_, k, k}, true, fan_in);
    const int b_off = add_tensor(name + ".bias", {out}, false, fan_in);
    model_.flops_per_example += 2.0 * static_cast<double>(times(times(out, out_h), out_w)) * static_cast<double>(fan_in);
    push(LayerKind::conv, out, out_h, out_w, k, w_off, b_off, relu);
  }

  void maxpool2() {
    if (h_ < 2 || w_ < 2) throw Error("model: input of " + shape() + " is too small for 2x2 max pooling");
    push(LayerKind::maxpool2, c_, h_ / 2, w_ / 2, 2, -1, -1, false);
  }

  // `knobs`: what to change when the model is too large.
  Model finish(const std::string& arch, int n_classes, float norm_divisor, const std::string& knobs) {
    const std::string limit = ", more than gac's limit of " + grouped(kMaxCount) + " (" + knobs + ")";
    if (params_ > kMaxCount) throw Error("model: this " + arch + " would have " + count_text(params_) + " parameters" + limit);
    if (activation_ > kMaxCount)
      throw Error("model: this " + arch + " would have a layer output of " + count_text(activation_) + " values" + limit);
    model_.arch_name = arch;
    model_.spec.n_classes = n_classes;
    model_.spec.norm_divisor = norm_divisor;
    return model_;
  }

 private:
  bool fits() const { return params_ <= kMaxCount && activation_ <= kMaxCount; }

  std::string shape() const {
    return std::to_string(c_) + "x" + std::to_string(h_) + "x" + std::to_string(w_);
  }

  // The tensor's offset (-1 once the model no longer fits).
  int add_tensor(const std::string& name, const std::vector<int64_t>& shape, bool is_weight, int64_t fan_in) {
    int64_t size = 1;
    for (int64_t d : shape) size = times(size, d);
    const int64_t offset = params_;
    params_ = plus(params_, size);
    if (!fits()) return -1;
    model_.tensors.push_back({name, std::vector<int>(shape.begin(), shape.end()), static_cast<int>(offset),
                              static_cast<int>(size), is_weight, static_cast<int>(fan_in)});
    model_.spec.n_params = static_cast<int32_t>(params_);
    return static_cast<int>(offset);
  }

  void push(LayerKind kind, int64_t out_c, int64_t out_h, int64_t out_w, int k, int w_off, int b_off, bool relu) {
    activation_ = std::max(activation_, times(times(out_c, out_h), out_w));
    ModelSpec& s = model_.spec;
    if (s.n_layers == ModelSpec::kMaxLayers)
      throw Error("model: more than " + std::to_string(ModelSpec::kMaxLayers) + " layers");
    if (fits()) {
      const auto i32 = [](int64_t v) { return static_cast<int32_t>(v); };
      s.layers[s.n_layers++] = Layer{kind,      i32(c_), i32(h_), i32(w_), i32(out_c), i32(out_h), i32(out_w), k,
                                     w_off,     b_off,   relu ? 1 : 0};
      s.max_activation = i32(activation_);
    }
    c_ = out_c;
    h_ = out_h;
    w_ = out_w;
  }

  int64_t c_, h_, w_;
  int64_t params_ = 0, activation_ = 0;
  Model model_;
};

}  // namespace

Arch parse_arch(const std::string& name) {
  if (name == "linear") return Arch::linear;
  if (name == "mlp") return Arch::mlp;
  if (name == "lenet") return Arch::lenet;
  throw Error("model.arch: unknown architecture '" + name + "' (expected linear, mlp or lenet)");
}

const char* arch_name(Arch arch) {
  switch (arch) {
    case Arch::linear: return "linear";
    case Arch::mlp: return "mlp";
    case Arch::lenet: return "lenet";
  }
  return "?";
}

Model build_model(const ModelConfig& cfg, int in_c, int in_h, int in_w, int n_classes) {
  if (n_classes < 2) throw Error("model: need at least 2 classes, got " + std::to_string(n_classes));
  Builder b(in_c, in_h, in_w);
  switch (cfg.arch) {
    case Arch::linear:
      b.dense("fc", n_classes, true, false);
      return b.finish("linear", n_classes, 1.0f, "use fewer classes or features");
    case Arch::mlp: {
      if (cfg.layers < 1) throw Error("model.layers must be at least 1, got " + std::to_string(cfg.layers));
      if (cfg.hidden < 1) throw Error("model.hidden must be at least 1, got " + std::to_string(cfg.hidden));
      // nn.Sequential numbering: Linear at even indices, ReLU between them.
      for (int l = 0; l < cfg.layers; ++l) b.dense("layers." + std::to_string(2 * l), cfg.hidden, cfg.hidden_bias, true);
      b.dense("layers." + std::to_string(2 * cfg.layers), n_classes, true, false);
      return b.finish("mlp", n_classes, 1.0f, "lower model.hidden or model.layers");
    }
    case Arch::lenet: {
      if (in_h == 1)
        throw Error("model: lenet needs image inputs (c x h x w), but the data has flat features of size " +
                    std::to_string(int64_t{in_c} * in_w) + " (give data.shape for flat image data)");
      // Past kMaxCount the count only has to be too large: finish() refuses it.
      const auto scaled = [&](int units) {
        const double v = std::floor(units * cfg.width);
        if (v < 1) throw Error("model.width = " + shortest(cfg.width) + " leaves a layer with no units");
        return static_cast<int64_t>(std::min(v, static_cast<double>(kMaxCount) + 1));
      };
      b.conv("conv1", scaled(6), 5, true);
      b.maxpool2();
      b.conv("conv2", scaled(16), 5, true);
      b.maxpool2();
      b.dense("fc1", scaled(120), true, true);
      b.dense("fc2", scaled(84), true, true);
      b.dense("fc3", n_classes, true, false);
      return b.finish("lenet", n_classes, 3.0f, "lower model.width");  // the paper's code divides each layer norm by 3
    }
  }
  throw Error("model: unknown architecture");
}

std::string layout_json(const Model& model) {
  nlohmann::ordered_json j;
  j["arch"] = model.arch_name;
  j["n_params"] = model.spec.n_params;
  j["input_shape"] = {model.spec.in_c, model.spec.in_h, model.spec.in_w};
  j["n_classes"] = model.spec.n_classes;
  j["dtype"] = "float32";
  auto& tensors = j["tensors"] = nlohmann::ordered_json::array();
  for (const auto& t : model.tensors)
    tensors.push_back({{"name", t.name}, {"shape", t.shape}, {"offset", t.offset}, {"size", t.size}});
  return j.dump(2) + "\n";
}

}  // namespace gac

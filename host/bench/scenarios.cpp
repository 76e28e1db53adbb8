// The bench's standard scenarios and their data.
#include "host/bench/scenarios.h"

#include <unistd.h>

#include <random>
#include <system_error>
#include <utility>

#include "gac/bench.h"
#include "gac/npy.h"

namespace gac {

namespace fs = std::filesystem;

const fs::path& TempDir::path() {
  if (path_.empty()) {
    path_ = fs::temp_directory_path() / ("gac-bench-" + std::to_string(getpid()));
    fs::create_directories(path_);
  }
  return path_;
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) fs::remove_all(path_, ec);
}

namespace {

// Fashion-MNIST's IDX files: Debian's dataset-fashion-mnist, or the
// directory GAC_FASHION_MNIST names (a GPU bundle carries a slice).
std::string fashion_dir() {
  const char* dir = std::getenv("GAC_FASHION_MNIST");
  return dir && *dir ? dir : "/usr/share/datasets/fashion-mnist";
}

// Random images in [0,1) with alternating labels 0/1, as .npy files: stands
// in for a real image set where none is installed (speed does not depend on
// what the pixels are).
std::string write_synthetic_images(TempDir& tmp, const std::string& stem, int c, int h, int w) {
  const int n_train = 256, n_test = 16;
  std::mt19937 rng(12345);
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  std::string toml;
  for (const auto& [split, count] : {std::pair{"train", n_train}, std::pair{"test", n_test}}) {
    std::vector<float> x(static_cast<size_t>(count) * c * h * w);
    std::vector<int32_t> y(count);
    for (float& v : x) v = pixel(rng);
    for (int i = 0; i < count; ++i) y[i] = i % 2;
    const fs::path xf = tmp.path() / (stem + "_" + split + "_x.npy"), yf = tmp.path() / (stem + "_" + split + "_y.npy");
    write_file_atomic(xf, npy_bytes_f32(x.data(), {count, c, h, w}));
    write_file_atomic(yf, npy_bytes_i32(y.data(), {count}));
    // TOML literal strings: the path is taken as is, with no escapes.
    toml += std::string(split) + "_x = '" + xf.string() + "'\n" + split + "_y = '" + yf.string() + "'\n";
  }
  return "kind = \"npy\"\nstandardize = true\n" + toml;
}

bool have_fashion_mnist() {
  for (const char* f : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"})
    if (!fs::exists(fs::path(fashion_dir()) / f) && !fs::exists(fs::path(fashion_dir()) / (std::string(f) + ".gz")))
      return false;
  return true;
}

}  // namespace

const std::vector<Scenario>& scenarios() {
  static const std::vector<Scenario> list = {
      {"kink-mlp", "kink data (2-D, 2 classes), MLP 2->10->2", {16}, 4096},
      {"lenet-28", "LeNet w0.5, 1x28x28, 2 classes (Fashion-MNIST 0/1, or synthetic)", {2, 16, 32}, 32},
      {"lenet-32", "LeNet w0.5, 3x32x32, 2 classes (synthetic images)", {16}, 32},
  };
  return list;
}

RunConfig scenario_config(const Scenario& s, const std::vector<int>& ns, TempDir& tmp, std::string& data_name) {
  std::string data, model;
  if (s.name == "kink-mlp") {
    data = "kind = \"kink\"\nmargin = 0.25\ntest_size = 16\n";
    model = "arch = \"mlp\"\nhidden = 10\nlayers = 1\n";
    data_name = "kink";
  } else if (s.name == "lenet-28") {
    if (have_fashion_mnist()) {
      data = "kind = \"idx\"\npath = '" + fashion_dir() + "'\nclasses = [0, 1]\n";
      data_name = "fashion-mnist 0/1";
    } else {
      data = write_synthetic_images(tmp, "lenet28", 1, 28, 28);
      data_name = "synthetic 1x28x28";
    }
    model = "arch = \"lenet\"\nwidth = 0.5\n";
  } else {
    data = write_synthetic_images(tmp, "lenet32", 3, 32, 32);
    data_name = "synthetic 3x32x32";
    model = "arch = \"lenet\"\nwidth = 0.5\n";
  }
  std::string n_list;
  for (int n : ns) n_list += (n_list.empty() ? "" : ", ") + std::to_string(n);
  const std::string text = "[data]\n" + data + "\n[model]\n" + model +
                           "\n[prior]\nkind = \"uniform\"\nradius = 1.0\n"
                           "\n[run]\nseed = 0\nn = [" + n_list + "]\nloss = \"normalized\"\n";
  return parse_config(text, "bench:" + s.name, {});
}

std::vector<std::string> bench_scenario_names() {
  std::vector<std::string> names;
  for (const Scenario& s : scenarios()) names.push_back(s.name);
  return names;
}

}  // namespace gac

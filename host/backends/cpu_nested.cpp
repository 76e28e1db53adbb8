// Nested sampling on the CPU: bodies in chunks, each chunk in two parallel
// steps (every body's features, then every body's heads in pieces), so that
// a body's n examples are evaluated once however many heads share them, and
// all cores work whether a call holds many bodies or a few with many heads.
#include "host/backends/cpu_nested.h"

#include <algorithm>
#include <cstring>

#include "host/util/parallel_for.h"
#include "kernels/nested.h"

namespace gac {

void generate_head_lanes_scalar(const StreamTask& task, const uint64_t* pairs, int lanes, float* H) {
  const int begin = task.prior.head_begin, size = task.model.n_params - begin;
  thread_local std::vector<float> one;
  one.resize(size);
  for (int l = 0; l < lanes; ++l) {
    generate_param_range(task.prior, task.key, pairs[l], begin, task.model.n_params, one.data());
    for (int j = 0; j < size; ++j) H[static_cast<size_t>(j) * lanes + l] = one[j];
  }
}

const NestedSimdKernel* nested_kernel_for(const SimdKernel* simd) {
  if (!simd) return nullptr;
  for (const NestedSimdKernel* k : {nested_kernel_avx512(), nested_kernel_avx2()})
    if (k && std::strcmp(k->name, simd->name) == 0) return k;
  return nullptr;
}

namespace {

constexpr uint32_t kHeadPiece = 256;              // heads per work item
constexpr size_t kChunkFeatureFloats = 1u << 22;  // features held at once (16 MiB)

// Heads [h0, h1) of one body of the chunk.
struct HeadPiece {
  uint64_t body_index;  // in the chunk
  uint32_t h0, h1;
};

// The scalar reference's features and product of `body`.
void scalar_body(const StreamTask& bodies, uint64_t body, float* feats, double* product) {
  const ModelSpec& m = bodies.model;
  thread_local std::vector<float> params, buf0, buf1;
  params.resize(m.n_params);
  buf0.resize(m.max_activation);
  buf1.resize(m.max_activation);
  generate_params(bodies.prior, bodies.key, body, m.n_params, params.data());
  *product = body_features(m, params.data(), bodies.train.x.data(), static_cast<int>(bodies.train.size()), feats,
                           buf0.data(), buf1.data());
}

// The scalar reference's heads [h0, h1) of `body`.
uint64_t scalar_heads(const StreamTask& t, uint64_t body, uint32_t h0, uint32_t h1, const float* feats,
                      double product, std::vector<Hit>& hits) {
  const ModelSpec& m = t.model;
  const int n = static_cast<int>(t.train.size());
  thread_local std::vector<float> head, logits;
  head.resize(head_size(m));
  logits.resize(static_cast<size_t>(n) * m.n_classes);
  uint64_t examples = 0;
  for (uint32_t h = h0; h < h1; ++h) {
    const uint64_t pair = body * t.prior.heads + h;
    generate_param_range(t.prior, t.key, pair, head_begin(m), m.n_params, head.data());
    const DrawResult r =
        evaluate_head(m, head.data(), feats, product, t.train.y.data(), n, t.loss, t.early_reject, logits.data());
    examples += t.early_reject ? std::min(n, r.correct + 1) : n;
    if (r.correct == n)
      hits.push_back({pair, r.loss, find_bin(t.bin_edges.data(), static_cast<int>(t.bin_edges.size()), r.loss)});
  }
  return examples;
}

}  // namespace

EvalCounts evaluate_nested(const StreamTask& task, const NestedSimdKernel* simd, int threads, uint64_t first,
                           uint64_t count, std::vector<Hit>& hits) {
  EvalCounts counts{count, 0};
  if (count == 0) return counts;
  const ModelSpec& m = task.model;
  const uint64_t K = task.prior.heads, end = first + count;
  const int n = static_cast<int>(task.train.size()), F = head_inputs(m);
  const size_t per_body = static_cast<size_t>(n) * F;
  const bool body_layers = m.n_layers > 1;  // a linear model's features are the examples themselves
  // The plain draws whose bodies the pairs share.
  StreamTask bodies;
  bodies.model = m;
  bodies.prior = task.prior;
  bodies.prior.heads = 1;
  bodies.key = task.key;
  bodies.train = task.train;
  const int W = simd ? simd->lanes : 1;
  const uint64_t chunk_bodies =
      std::max<uint64_t>(static_cast<uint64_t>(W) * threads, kChunkFeatureFloats / std::max<size_t>(per_body, 1)) / W * W;

  std::vector<std::vector<Hit>> found(threads);
  std::vector<uint64_t> examples(threads, 0);
  std::vector<float> feats;
  std::vector<double> products;
  std::vector<HeadPiece> pieces;
  for (uint64_t chunk = first / K, body_end = (end - 1) / K + 1; chunk < body_end; chunk += chunk_bodies) {
    const uint64_t bodies_here = std::min(chunk_bodies, body_end - chunk);
    products.assign(bodies_here, 1.0);
    if (body_layers) {
      feats.resize(bodies_here * per_body);
      parallel_for(threads, (bodies_here + W - 1) / W, 1, [&](int, uint64_t g) {
        const uint64_t b = g * W;
        if (simd)
          simd->bodies(bodies, chunk + b, static_cast<int>(std::min<uint64_t>(W, bodies_here - b)),
                       feats.data() + b * per_body, products.data() + b);
        else
          scalar_body(bodies, chunk + b, feats.data() + b * per_body, products.data() + b);
      });
      examples[0] += bodies_here * n;
    }
    pieces.clear();
    for (uint64_t i = 0; i < bodies_here; ++i) {
      const uint64_t base = (chunk + i) * K;
      const uint32_t lo = static_cast<uint32_t>(std::max(first, base) - base);
      const uint32_t hi = static_cast<uint32_t>(std::min(end, base + K) - base);
      for (uint32_t h = lo; h < hi; h += std::min(kHeadPiece, hi - h)) pieces.push_back({i, h, std::min(hi, h + kHeadPiece)});
    }
    parallel_for(threads, pieces.size(), 1, [&](int t, uint64_t p) {
      const HeadPiece& piece = pieces[p];
      const float* f = body_layers ? feats.data() + piece.body_index * per_body : task.train.x.data();
      const uint64_t body = chunk + piece.body_index;
      const double product = products[piece.body_index];
      examples[t] += simd ? simd->heads(task, body, piece.h0, piece.h1, f, product, found[t])
                          : scalar_heads(task, body, piece.h0, piece.h1, f, product, found[t]);
    });
  }
  const size_t old = hits.size();
  for (int t = 0; t < threads; ++t) {
    hits.insert(hits.end(), found[t].begin(), found[t].end());
    counts.examples += examples[t];
  }
  std::sort(hits.begin() + old, hits.end(), [](const Hit& a, const Hit& b) { return a.draw < b.draw; });
  return counts;
}

}  // namespace gac

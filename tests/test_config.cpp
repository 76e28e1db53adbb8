// Config parsing: every key checked, every bad value one clear error.
#include <gtest/gtest.h>

#include "gac/config.h"
#include "gac/error.h"

using namespace gac;

namespace {

// The message of the gac::Error that parsing `text` throws ("" if none).
std::string config_error(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    parse_config(text, "test.toml", overrides);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

const char* kBase = R"(
[data]
kind = "kink"
[model]
arch = "mlp"
hidden = 10
[run]
n = [4, 8]
bins = [0.5, 0.6, 0.7]
target = 3
)";

}  // namespace

TEST(Config, ParsesEverySection) {
  const RunConfig c = parse_config(std::string(kBase) + "[prior]\nkind = \"normal\"\nsigma = 0.5\n[exec]\nthreads = 3\n", "t");
  EXPECT_EQ(c.data.kind, "kink");
  EXPECT_EQ(c.model.arch, Arch::mlp);
  EXPECT_EQ(c.ns, (std::vector<int>{4, 8}));
  EXPECT_EQ(c.bins, (std::vector<double>{0.5, 0.6, 0.7}));
  EXPECT_EQ(c.target, 3);
  EXPECT_EQ(c.prior.kind, PriorKind::normal);
  EXPECT_EQ(c.prior.sigma, 0.5);
  EXPECT_EQ(c.threads, 3);
}

TEST(Config, OverridesUseTomlSyntaxAndBareWords) {
  const RunConfig c = parse_config(kBase, "t", {"model.hidden=20", "run.n=[2]", "prior.kind=kaiming", "run.bins=[0.1, 0.2]"});
  EXPECT_EQ(c.model.hidden, 20);
  EXPECT_EQ(c.ns, (std::vector<int>{2}));
  EXPECT_EQ(c.prior.kind, PriorKind::kaiming);
  EXPECT_EQ(c.bins.size(), 2u);
}

TEST(Config, UnknownKeyIsRejected) {
  const std::string e = config_error(std::string(kBase) + "targte = 4\n");
  EXPECT_NE(e.find("unknown key 'run.targte'"), std::string::npos) << e;
  EXPECT_NE(config_error(kBase, {"model.hiden=3"}).find("model.hiden"), std::string::npos);
  EXPECT_NE(config_error("seed = 3\n").find("unknown key 'seed'"), std::string::npos);
}

TEST(Config, WrongValueTypeIsRejected) {
  const std::string e = config_error(kBase, {"run.target=\"ten\""});
  EXPECT_NE(e.find("run.target: expected an integer, got a string"), std::string::npos) << e;
  EXPECT_NE(config_error(kBase, {"model.hidden_bias=3"}).find("expected true or false"), std::string::npos);
  EXPECT_NE(config_error(kBase, {"data.kind=mnist"}).find("'mnist' is not one of"), std::string::npos);
  EXPECT_NE(config_error(kBase, {"run.target=0"}).find("out of range"), std::string::npos);
}

TEST(Config, BinEdgesMustIncrease) {
  const std::string e = config_error(kBase, {"run.bins=[0.3, 0.5, 0.4]"});
  EXPECT_NE(e.find("run.bins: edges must be strictly increasing"), std::string::npos) << e;
  EXPECT_NE(config_error(kBase, {"run.bins=[0.3, 0.3]"}).find("strictly increasing"), std::string::npos);
  EXPECT_NE(config_error(kBase, {"run.bins=[0.3]"}).find("at least two edges"), std::string::npos);
}

TEST(Config, SyntaxErrorsNameTheLine) {
  const std::string e = config_error("[run]\nn = [1, \n");
  EXPECT_NE(e.find("test.toml:"), std::string::npos) << e;
}

TEST(Config, BadOverrideSyntaxIsRejected) {
  EXPECT_NE(config_error(kBase, {"hidden"}).find("expected key=value"), std::string::npos);
  EXPECT_NE(config_error(kBase, {"hidden=3"}).find("section.name"), std::string::npos);
}

TEST(Config, MissingFileIsNamed) {
  try {
    load_config("/nonexistent/dir/x.toml");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/x.toml"), std::string::npos);
  }
}

TEST(Config, IdentityLeavesOutStoppingRulesAndExecution) {
  const RunConfig a = parse_config(kBase, "t");
  const RunConfig b = parse_config(kBase, "t", {"run.max_draws=5", "run.time_limit=3", "exec.threads=1", "exec.batch=7"});
  const RunConfig c = parse_config(kBase, "t", {"run.target=4"});
  EXPECT_EQ(identity_toml(a), identity_toml(b));
  EXPECT_NE(identity_toml(a), identity_toml(c));
  EXPECT_NE(resolved_toml(a), resolved_toml(b));
  // The identity text parses back to the same identity.
  EXPECT_EQ(identity_toml(parse_config(identity_toml(c), "identity")), identity_toml(c));
}

TEST(Config, DataSeedsDependOnNAndRepeat) {
  EXPECT_NE(data_seed(0, 4, 0), data_seed(0, 4, 1));
  EXPECT_NE(data_seed(0, 4, 0), data_seed(0, 8, 0));
  EXPECT_NE(data_seed(0, 4, 0), data_seed(1, 4, 0));
  EXPECT_EQ(data_seed(3, 4, 5), data_seed(3, 4, 5));
}

// Config parsing: every key checked, every bad value one clear error.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>

#include "gac/config.h"
#include "gac/error.h"
#include "host/config/keys.h"
#include "host/config/toml_guard.h"
#include "tests/test_util.h"

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

TEST(Config, KeysForAnotherKindArchitectureOrPriorAreRefused) {
  const std::string npy = "[data]\nkind = \"npy\"\ntrain_x = \"a\"\ntrain_y = \"b\"\ntest_x = \"c\"\ntest_y = \"d\"\n";
  EXPECT_NE(config_error(npy + "label_column = 2\n")
                .find("data.label_column: does not apply to data.kind = \"npy\" (only to csv); remove it"),
            std::string::npos)
      << config_error(npy + "label_column = 2\n");
  EXPECT_NE(config_error(npy, {"data.margin=0.3"}).find("data.margin: does not apply to data.kind = \"npy\" (only to kink)"),
            std::string::npos);
  EXPECT_NE(config_error("[data]\nkind = \"slab\"\nmargin = 0.3\n").find("data.margin"), std::string::npos);
  EXPECT_NE(config_error("[data]\nkind = \"kink\"\nclasses = [0, 1]\n").find("data.classes"), std::string::npos);
  EXPECT_NE(config_error("[model]\narch = \"lenet\"\nhidden = 3\n").find("model.hidden: does not apply to model.arch = \"lenet\""),
            std::string::npos);
  EXPECT_NE(config_error(kBase, {"model.width=0.5"}).find("model.width"), std::string::npos);
  EXPECT_NE(config_error("[prior]\nkind = \"normal\"\nradius = 2.0\n").find("prior.radius: does not apply to prior.kind = "
                                                                           "\"normal\" (only to uniform)"),
            std::string::npos);
  // Keys that apply are accepted, whatever their order in the file.
  EXPECT_EQ(config_error("[model]\nwidth = 0.5\narch = \"lenet\"\n[prior]\nsigma = 2.0\nkind = \"normal\"\n"), "");
  // An override choosing another kind replaces the file's choice with its keys (kBase has model.hidden)...
  EXPECT_EQ(config_error(kBase, {"model.arch=lenet"}), "");
  // ...but a key given beside it must apply.
  EXPECT_NE(config_error(kBase, {"model.arch=lenet", "model.hidden=4"}).find("model.hidden"), std::string::npos);
}

TEST(Config, ADirectoryIsNoConfig) {
  EXPECT_ERROR_MENTIONS(load_config(std::filesystem::temp_directory_path()),
                        std::filesystem::temp_directory_path().string() + " is a directory, not a config file");
}

TEST(Config, IdentityWritesFloatsInTheirShortestExactForm) {
  const RunConfig c = parse_config(kBase, "t", {"run.bins=[0.3, 0.30000000000000004, 0.69, 1e300]", "prior.radius=2"});
  const std::string text = identity_toml(c);
  EXPECT_NE(text.find("bins = [ 0.3, 0.30000000000000004, 0.69, 1e+300 ]\n"), std::string::npos) << text;
  EXPECT_NE(text.find("radius = 2.0\n"), std::string::npos) << text;  // still a float when read back
  EXPECT_NE(text.find("margin = 0.25\n"), std::string::npos) << text;
  const RunConfig back = parse_config(text, "identity");
  EXPECT_EQ(back.bins, c.bins);
  EXPECT_EQ(back.prior.radius, 2.0);
  EXPECT_NE(resolved_toml(c).find("time_limit = 0.0\n"), std::string::npos) << resolved_toml(c);
  // Other values are written by toml++, strings escaped.
  const RunConfig idx = parse_config("[data]\nkind = \"idx\"\npath = \"a\\\"b\\tc\"\n", "t");
  EXPECT_EQ(parse_config(identity_toml(idx), "identity").data.path, "a\"b\tc");
}

TEST(Config, NonAsciiOutsideStringsIsRefusedBeforeToml) {
  // toml++ 3.3 reaches undefined behaviour on some of these (found by fuzz/fuzz_config).
  EXPECT_NE(config_error("[run]\nseed = 1 \xc3\xa9\n").find("test.toml:2:10: a non-ASCII character outside a string or comment"),
            std::string::npos);
  EXPECT_NE(config_error("[run]\nseed =1\"x\xce\x91\"\n").find("non-ASCII"), std::string::npos);
  EXPECT_NE(config_error(" \xef\xbb\xbb").find("non-ASCII"), std::string::npos);
  // In a """string""", after a backslash (and any whitespace) toml++ classifies the next character too.
  EXPECT_NE(config_error("\"\"\"a= 1\nu-.time_lieppr\"b!l \\ \xce\x9a\xc2 \x8c\x9a\x9a\xe5=0\n[")
                .find("test.toml:2:22: a non-ASCII character after a backslash"),
            std::string::npos);
  EXPECT_NE(config_error("[data]\nkind = \"idx\"\npath = \"\"\"a \\\n  \n \xc3\xa9\"\"\"\n").find("test.toml:5:2: a non-ASCII"),
            std::string::npos);
  EXPECT_NE(config_error("[data]\nkind = \"idx\"\npath = \"\"\"a\\\xc3\xa9\"\"\"\n").find("after a backslash"), std::string::npos);
  EXPECT_EQ(config_error("[data]\nkind = \"idx\"\npath = \"\"\"a \\\n  b\xc3\xa9\\t\xc3\xa9\"\"\"\n"), "");
  // In strings and comments, and as a leading byte order mark, it is fine.
  EXPECT_EQ(config_error("\xef\xbb\xbf# caf\xc3\xa9\n[data]\nkind = \"idx\" # \xc3\xa9\npath = \"\xc3\xa9t\xc3\xa9\"\n"), "");
  EXPECT_EQ(config_error("[data]\nkind = \"idx\"\npath = '''\n\xc3\xa9'''\n"), "");
  // An override's value that is not TOML because of one is taken as a word.
  EXPECT_EQ(parse_config("[data]\nkind = \"idx\"\npath = \"x\"\n", "t", {"data.path=\xc3\xa9t\xc3\xa9"}).data.path,
            "\xc3\xa9t\xc3\xa9");
}

TEST(Config, TextTheGuardMisreadsIsRefusedByTheClassifiableParse) {
  // toml++ reads `+2.5"=` as one bare value and classifies the U+0132 after it; the guard took
  // `"""` for a string (found by fuzz/fuzz_config, whose corpus keeps the input).
  const std::string bad = "[datA]\n\nus =+2.5\"=\"\"\"\"\" \xc4\xb2X\n";
  EXPECT_EQ(non_ascii_toml_cannot_read(bad).at, std::string_view::npos);
  EXPECT_NE(config_error(bad).find("test.toml:3:"), std::string::npos) << config_error(bad);
  EXPECT_NE(config_error("[run]\nseed =1=\"\xc4\xb2\"\n").find("test.toml:2:"), std::string::npos);
  // Only what toml++ cannot classify is replaced, by a character of the same length.
  EXPECT_EQ(toml_classifiable("a \xc4\xb2 \xc3\xa0 \xe2\x80\x83 \xef\xbb\xbf \xef\xad\x90 \xf0\x9f\x98\x80 \xc4"),
            "a \xd4\x80 \xd4\x80 \xe2\x80\x83 \xef\xbb\xbf \xe4\xb8\x80 \xf0\x9f\x98\x80 \xc4");
  // In a string that parses, the characters are kept as written.
  EXPECT_EQ(parse_config("[data]\nkind = \"idx\"\npath = \"\xc4\xb2\xef\xad\x90\"\n", "t").data.path,
            "\xc4\xb2\xef\xad\x90");
}

TEST(Config, AnOverrideThatIsNotUtf8IsRefused) {
  // config.toml could not hold it: toml++ would write \u00FF, another path.
  EXPECT_NE(config_error("[data]\nkind = \"idx\"\npath = \"x\"\n", {"data.path=\xff\xfe"}).find("--set data.path: not valid UTF-8"),
            std::string::npos);
}

TEST(Config, TheOptimizerIsPartOfTheIdentityOnlyForSgd) {
  const RunConfig guess = parse_config(kBase, "t");
  EXPECT_EQ(guess.optimizer, "guess");
  EXPECT_EQ(identity_toml(guess).find("optimizer"), std::string::npos);  // runs made before it still open
  EXPECT_EQ(identity_toml(parse_config(kBase, "t", {"optimizer.kind=guess"})), identity_toml(guess));
  const RunConfig sgd = parse_config(kBase + std::string("[optimizer]\nkind = \"sgd\"\nlr = 0.1\nmomentum = 0.5\n"
                                                         "batch_size = 3\nepochs = 200\n"),
                                     "t");
  EXPECT_EQ(sgd.sgd.lr, 0.1);
  EXPECT_EQ(sgd.sgd.momentum, 0.5);
  EXPECT_EQ(sgd.sgd.batch_size, 3);
  EXPECT_EQ(sgd.sgd.epochs, 200);
  const std::string text = identity_toml(sgd);
  EXPECT_NE(text.find("[optimizer]\nbatch_size = 3\nepochs = 200\nkind = \"sgd\"\nlr = 0.1\nmomentum = 0.5\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(identity_toml(parse_config(text, "identity")), text);
  EXPECT_EQ(identity_difference(guess, sgd), "optimizer.batch_size is 3 here but not set there");
  EXPECT_EQ(identity_difference(sgd, parse_config(text, "t", {"optimizer.lr=0.01"})).rfind("optimizer.lr is 0.1", 0), 0u);
  // The defaults are the paper's Table 2 settings.
  const RunConfig defaults = parse_config(kBase, "t", {"optimizer.kind=sgd"});
  EXPECT_EQ(defaults.sgd.lr, 0.001);
  EXPECT_EQ(defaults.sgd.batch_size, 2);
  EXPECT_EQ(defaults.sgd.epochs, 30);
  EXPECT_EQ(defaults.sgd.momentum, 0.0);
}

TEST(Config, OptimizerKeysAreCheckedAndApplyOnlyToSgd) {
  const std::string sgd = kBase + std::string("[optimizer]\nkind = \"sgd\"\n");
  EXPECT_NE(config_error(kBase, {"optimizer.kind=adam"}).find("optimizer.kind: 'adam' is not one of guess, sgd"),
            std::string::npos);
  EXPECT_NE(config_error(sgd, {"optimizer.lr=-1"}).find("optimizer.lr: must be positive, got -1"), std::string::npos);
  EXPECT_NE(config_error(sgd, {"optimizer.lr=1e300"}).find("optimizer.lr: 1e+300 is not a positive float"), std::string::npos);
  EXPECT_NE(config_error(sgd, {"optimizer.momentum=-0.1"}).find("optimizer.momentum: must be in [0, 1), got -0.1"),
            std::string::npos);
  EXPECT_NE(config_error(sgd, {"optimizer.batch_size=2.5"}).find("optimizer.batch_size: expected an integer"),
            std::string::npos);
  EXPECT_NE(config_error(sgd, {"run.n=[4, 100000]", "optimizer.epochs=1000"})
                .find("optimizer.epochs: 1000 epochs of up to n = 100000 examples: epochs x n must be at most 67108864"),
            std::string::npos);
  EXPECT_EQ(config_error(sgd, {"optimizer.epochs=0", "optimizer.momentum=0.9"}), "");  // 0 epochs: the draws as they are
  EXPECT_NE(config_error(kBase + std::string("[optimizer]\nmomentum = 0.9\n"))
                .find("optimizer.momentum: does not apply to optimizer.kind = \"guess\" (only to sgd); remove it"),
            std::string::npos);
  // Choosing guess with --set replaces the file's sgd and its keys, as for other kinds.
  EXPECT_EQ(config_error(sgd + "lr = 0.1\n", {"optimizer.kind=guess"}), "");
  EXPECT_NE(config_error(kBase, {"optimizer.foo=1"}).find("unknown key 'optimizer.foo' (known: optimizer.batch_size"),
            std::string::npos);
}

TEST(Config, EveryKeyHasOneRowAndItsScopeNamesAKey) {
  std::set<std::string> names;
  for (const ConfigKey& key : config_keys()) {
    EXPECT_TRUE(names.insert(key.name).second) << key.name << " has two rows";
    if (key.scope.setting.empty()) continue;
    const ConfigKey* setting = find_config_key(key.scope.setting);
    ASSERT_NE(setting, nullptr) << key.name << " applies for values of " << key.scope.setting << ", which is no key";
    EXPECT_TRUE(std::holds_alternative<std::string>(setting->value.write(RunConfig{}))) << key.scope.setting;
  }
}

// docs/configuration.md, the reference, has one "| `section.key` |" row per key of the table.
TEST(Config, TheReferenceDocumentsEveryKeyAndNoOther) {
  std::ifstream doc(std::string(GAC_SOURCE_DIR) + "/docs/configuration.md");
  ASSERT_TRUE(doc) << "cannot read docs/configuration.md";
  std::set<std::string> documented;
  const std::regex row(R"(^\|\s*`([a-z_]+\.[a-z_]+)`\s*\|)");
  std::smatch match;
  for (std::string line; std::getline(doc, line);)
    if (std::regex_search(line, match, row)) documented.insert(match[1]);
  std::set<std::string> keys;
  for (const ConfigKey& key : config_keys()) keys.insert(key.name);
  for (const std::string& key : keys)
    EXPECT_TRUE(documented.count(key)) << key << " is a config key (host/config/keys.cpp) with no row in docs/configuration.md";
  for (const std::string& key : documented)
    EXPECT_TRUE(keys.count(key)) << key << " has a row in docs/configuration.md but is no config key (host/config/keys.cpp)";
}

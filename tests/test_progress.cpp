// The run's ETA (host/run/progress.h): which rates stand in for an n that has not run yet.
#include <gtest/gtest.h>

#include <cmath>

#include "host/run/progress.h"

namespace gac {
namespace {

UnitRun unit(int n, uint64_t draws, uint64_t hits, double seconds) {
  UnitRun u;
  u.unit.n = n;
  u.unit.target = 1;
  u.unit.max_draws = 1000000;
  u.st.n = n;
  u.st.draws = draws;
  u.st.hits = {hits};
  u.st.stored = {hits > 0 ? 1 : 0};
  u.st.seconds = seconds;
  return u;
}

// Two n, the first done (one model in one draw of 20 s), the second not begun.
std::vector<UnitRun> half_run() { return {unit(100, 1, 1, 20.0), unit(300, 0, 0, 0.0)}; }

TEST(RunEstimate, AnNotYetRunIsBoundedByItsBudgetForGuessAndCheck) {
  const RunEstimate e = estimate(half_run(), 1);
  EXPECT_EQ(e.done, 1);
  EXPECT_TRUE(e.budget_bound);
  EXPECT_DOUBLE_EQ(e.eta, 1000000 * 20.0);  // every draw of its budget at the seen speed
}

TEST(RunEstimate, TrainedDrawsBorrowTheRatesOfTheNAlreadyRun) {
  const RunEstimate e = estimate(half_run(), 1, true);
  EXPECT_EQ(e.done, 1);
  EXPECT_FALSE(e.budget_bound);
  EXPECT_DOUBLE_EQ(e.eta, 20.0);  // one draw fills it, at 20 s a draw
}

TEST(RunEstimate, AnNWithItsOwnRatesKeepsThemWhenPooling) {
  std::vector<UnitRun> units = half_run();
  units.push_back(unit(300, 4, 1, 40.0));  // n = 300 has run: 4 draws per model, 10 s each
  units[1].st.hits = {0};
  units[1].st.stored = {0};
  const RunEstimate e = estimate(units, 1, true);
  EXPECT_EQ(e.done, 2);
  EXPECT_DOUBLE_EQ(e.eta, 4 * 10.0);
}

}  // namespace
}  // namespace gac

#include "host/config/device_list.h"

#include <algorithm>
#include <numeric>
#include <set>
#include <sstream>

#include "gac/error.h"

namespace gac {

std::string device_list_problem(const std::string& text) {
  if (text == "all") return "";
  std::set<long> seen;
  std::stringstream in(text);
  std::string item;
  int items = 0;
  while (std::getline(in, item, ',')) {
    ++items;
    if (item.empty() || item.size() > 6 || !std::ranges::all_of(item, [](char c) { return c >= '0' && c <= '9'; }))
      return "expected \"all\" or device numbers separated by commas (as 0,2), got '" + text + "'";
    if (!seen.insert(std::stol(item)).second) return "device " + item + " is listed twice";
  }
  if (items == 0 || text.back() == ',')
    return "expected \"all\" or device numbers separated by commas (as 0,2), got '" + text + "'";
  return "";
}

std::vector<int> parse_device_list(const std::string& text, int count) {
  if (const std::string problem = device_list_problem(text); !problem.empty()) throw Error("devices: " + problem);
  std::vector<int> out;
  if (text == "all") {
    out.resize(count);
    std::iota(out.begin(), out.end(), 0);
    return out;
  }
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    const int d = std::stoi(item);
    if (d >= count)
      throw Error("devices: there is no device " + item + " (this machine has " + std::to_string(count) +
                  (count == 1 ? ": 0)" : ": 0 to " + std::to_string(count - 1) + ")"));
    out.push_back(d);
  }
  return out;
}

}  // namespace gac

// Random edits of a JSON text, for the differential tests of the readers against
// nlohmann (json_reader_test, answer_parity_test): 1-3 bytes erased, inserted or replaced
// by bytes of `alphabet` (which may hold a NUL: it is a string_view).
#pragma once

#include <cstddef>
#include <random>
#include <string>
#include <string_view>

inline std::string mutated(std::string s, std::mt19937& rng, std::string_view alphabet) {
  const int edits = 1 + static_cast<int>(rng() % 3);
  for (int e = 0; e < edits; ++e) {
    const std::size_t pos = rng() % (s.size() + 1);
    const char c = alphabet[rng() % alphabet.size()];
    switch (rng() % 3) {
    case 0:
      if (pos < s.size()) s.erase(pos, 1);
      break;
    case 1: s.insert(pos, 1, c); break;
    default:
      if (pos < s.size()) s[pos] = c;
      break;
    }
  }
  return s;
}

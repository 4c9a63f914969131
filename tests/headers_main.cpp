// Links the translation units that each include one public header alone: if any header
// missed an include, this target would not compile.
#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  std::printf("%s public headers compiled alone\n", argc > 1 ? argv[1] : "?");
  return argc > 1 && std::atoi(argv[1]) > 0 ? 0 : 1;
}

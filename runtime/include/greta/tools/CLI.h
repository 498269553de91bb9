//===- CLI.h - CLI11 parsing shared by GRETA's tools ------------*- C++ -*-===//
#ifndef GRETA_TOOLS_CLI_H
#define GRETA_TOOLS_CLI_H

#include "greta/tools/Version.h"

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace greta {

/// --version prints versionLine(tool).
inline void addVersionFlag(CLI::App &app, const char *tool) {
  app.set_version_flag("--version", versionLine(tool));
}

/// app.parse(argc, argv), with `--name=` meaning an empty value as
/// `--name ""` does. CLI11 2.1 reads `--name=` as `--name` without a value
/// and takes the next argument as its value (`--test= --ref x` set --test to
/// "--ref"). Only names of the app's own options are split: a value that
/// looks like `--x=` (a RUN FLAGS string) is left alone.
inline void parseArgs(CLI::App &app, int argc, char **argv) {
  std::vector<std::string> args; // reversed, as CLI11 wants them
  for (int i = argc - 1; i > 0; --i) {
    std::string a = argv[i];
    size_t eq = a.find('=');
    const CLI::Option *opt = a.rfind("--", 0) == 0 && eq == a.size() - 1
                                 ? app.get_option_no_throw(a.substr(0, eq))
                                 : nullptr;
    if (opt && opt->get_type_size_max() > 0) { // an option with a value
      args.emplace_back("");
      args.push_back(a.substr(0, eq));
    } else {
      args.push_back(std::move(a));
    }
  }
  if (app.get_name().empty())
    app.name(argv[0]);
  app.parse(std::move(args));
}

} // namespace greta

#endif // GRETA_TOOLS_CLI_H

// Man pages and shell completion, generated from the command line's own definitions
// (the CLI11 App main.cpp builds): one source for --help, fusescope(1),
// fusescope-COMMAND(1) and the bash completion, so they cannot disagree.
#pragma once

#include <CLI/CLI.hpp>

#include <map>
#include <string>

namespace fusescope::cli {

// What completes an option's value; options not listed complete nothing special.
enum class ValueKind { Files, Dirs, Words };
struct ValueCompletion {
    ValueKind kind = ValueKind::Files;
    std::string words; // ValueKind::Words: the choices, space-separated
};
using Completions = std::map<std::string, ValueCompletion>; // by long option name ("--sort")

// fusescope.1 and fusescope-COMMAND.1 (troff, man(7)) into @dir; false with *error.
bool write_man_pages(CLI::App &app, const std::string &version, const std::string &dir,
                     std::string *error);
// A bash completion script for @app (complete -F _fusescope fusescope).
std::string bash_completion(CLI::App &app, const Completions &values);

} // namespace fusescope::cli

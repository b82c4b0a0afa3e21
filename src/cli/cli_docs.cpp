// Man pages and bash completion from the CLI11 definitions (src/cli/cli_docs.h).
#include "cli_docs.h"

#include "fusescope/core/exit_codes.h"
#include "fusescope/core/status.h"

#include <fmt/format.h>

#include <fstream>
#include <vector>

namespace fusescope::cli {

namespace {

// More than --help's one line, per command: what a man page's DESCRIPTION says.
const std::map<std::string, std::string> kMore = {
    {"", "fusescope shows, per inode of every FUSE mount, its IO mode (cache or uncached), "
         "who put it in cache mode (program, process, systemd unit or container, how, since "
         "when), how often direct-IO writers took inode->i_rwsem shared or exclusive and why, "
         "and the time they waited for it. It needs root: it loads BPF programs (the "
         "trampoline backend where the kernel allows fentry/fexit, else the tracepoint "
         "backend), and drops every capability it no longer needs once they are attached. "
         "Names of processes, files and cgroups are escaped in text output (control bytes "
         "and bytes that are not UTF-8 become \\xNN, a backslash \\\\)."},
    {"doctor", "Probes the kernel (BTF, lockdown, tracefs, FUSE IO modes, trampolines), "
               "chooses the backend and shows for every role the hook that fills it or why "
               "none can; then loads and attaches the plan for real and detaches it."},
    {"trace", "Prints one line (or JSON object) per event: writes with their lock mode, "
              "reason and wait, opens, mmaps, releases, drain waits and cache-mode changes, "
              "each with the process's cgroup (systemd unit, container) and, for holders and "
              "writers, its executable. The census of holders that existed before it "
              "started comes first."},
    {"top", "A live view of the FUSE inodes: IO mode, holders grouped by program, writes "
            "per second, exclusive share and reason, lock wait. Enter shows an inode's "
            "detail (J and K scroll it): holding programs since start with their "
            "processes, holds and hold times, the writers, and where each runs. -b prints "
            "plain snapshots, --json one JSON object per refresh. Paths come from open "
            "descriptors or, for files closed before, from the kernel's name at their first "
            "open (a rename since is not seen)."},
    {"export", "A Prometheus exporter (/metrics, /-/healthy, /-/ready) with TLS and basic "
               "auth from a node_exporter web configuration file. Per-inode series, holder and "
               "writer programs with their executable, cgroup, unit and container only for "
               "the --per-inode-top inodes with most lock wait."},
    {"diagnose", "Takes a census, watches for --duration seconds and prints one report of "
                 "ranked findings with their cost and a fix: cache IO mode and the programs "
                 "that held it (each hold timed to its own release), missing "
                 "FOPEN_PARALLEL_DIRECT_WRITES, appends, writes past EOF, drain waits. Lookups "
                 "of --path and --mount never wait on the filesystem: a server that does not "
                 "answer within 3 s is a finding of its own (exit status 5)."},
    {"demo", "Mounts fusescope's own test filesystem in /tmp, runs a database-like writer "
             "pool and an indexer that maps the database file on and off, and watches with "
             "top; everything is unmounted and stopped on exit."},
};

// troff text: backslashes and leading control characters escaped.
std::string roff(std::string_view s) {
    std::string out;
    for (char c : s) {
        if (c == '\\')
            out += "\\e";
        else if (c == '-')
            out += "\\-";
        else
            out += c;
    }
    if (!out.empty() && (out[0] == '.' || out[0] == '\''))
        out.insert(0, "\\&");
    return out;
}

std::string upper(std::string s) {
    for (auto &c : s)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

bool documented(const CLI::Option *o) { return !o->get_group().empty(); }

// ".TP" entries of @app's options (positionals and hidden ones excepted).
std::string options_roff(const CLI::App &app) {
    std::string out;
    for (const CLI::Option *o : app.get_options()) {
        if (!documented(o) || (o->get_lnames().empty() && o->get_snames().empty()))
            continue;
        std::vector<std::string> names;
        for (const auto &n : o->get_snames())
            names.push_back("\\fB\\-" + n + "\\fR");
        for (const auto &n : o->get_lnames())
            names.push_back("\\fB\\-\\-" + roff(n) + "\\fR");
        std::string head;
        for (size_t i = 0; i < names.size(); ++i)
            head += (i ? ", " : "") + names[i];
        if (o->get_expected_min() > 0) // "FLOAT:(FINITE) AND ..." -> "FLOAT"
            head +=
                " \\fI" + roff(o->get_type_name().substr(0, o->get_type_name().find(':'))) + "\\fR";
        out += ".TP\n" + head + "\n" + roff(o->get_description()) + "\n";
    }
    return out;
}

// The STATUS STREAM section, from status.h's table of line kinds and fields.
std::string status_roff() {
    std::string out = ".SH STATUS STREAM\n" +
                      roff("With --status-fd N, fusescope writes one JSON object per line to "
                           "file descriptor N, for scripts: the human text on stderr stays as "
                           "it is. Every line has \"status\", the line's kind, and then the "
                           "kind's fields in this order (counters are cumulative). A "
                           "descriptor that is not open for writing is a bad command line.") +
                      "\n";
    for (const auto &k : status::kKinds) {
        out += ".TP\n\\fB" + roff(k.name) + "\\fR\n" + roff(k.when) + ".\n.RS\n";
        for (const auto &f : status::kFields)
            if (f.kind == k.kind)
                out += ".TP\n\\fI" + roff(f.name) + "\\fR\n" + roff(f.doc) + "\n";
        out += ".RE\n";
    }
    return out;
}

std::string page(CLI::App &app, CLI::App *cmd, const std::string &version) {
    const std::string name = cmd ? "fusescope-" + cmd->get_name() : "fusescope";
    std::string out = fmt::format(".TH {} 1 \"\" \"fusescope {}\" \"User Commands\"\n", upper(name),
                                  roff(version));
    out += ".SH NAME\n" + roff(name) + " \\- " +
           roff(cmd ? cmd->get_description() : app.get_description()) + "\n";
    out += ".SH SYNOPSIS\n.B fusescope\n[\\fIglobal options\\fR]\n";
    out += cmd ? ".B " + roff(cmd->get_name()) + "\n[\\fIoptions\\fR]\n" : "\\fICOMMAND\\fR\n";
    out += ".SH DESCRIPTION\n" + roff(kMore.at(cmd ? cmd->get_name() : "")) + "\n";
    if (cmd) {
        out += ".SH OPTIONS\n" + options_roff(*cmd);
    } else {
        out += ".SH COMMANDS\n";
        for (CLI::App *c : app.get_subcommands([](CLI::App *) { return true; }))
            out += ".TP\n\\fB" + roff(c->get_name()) + "\\fR\n" + roff(c->get_description()) +
                   "; see \\fBfusescope\\-" + roff(c->get_name()) + "\\fR(1).\n";
    }
    out += ".SH GLOBAL OPTIONS\n" + options_roff(app);
    if (!cmd)
        out += status_roff();
    out += ".SH EXIT STATUS\n";
    for (const auto &e : exit_code::kExitStatuses)
        out += fmt::format(".TP\n{}\n{}\n", e.code, roff(e.meaning));
    out += ".SH SEE ALSO\n";
    std::vector<std::string> see = {"\\fBfusescope\\fR(1)"};
    for (CLI::App *c : app.get_subcommands([](CLI::App *) { return true; }))
        see.push_back("\\fBfusescope\\-" + roff(c->get_name()) + "\\fR(1)");
    std::string list;
    for (const auto &s : see)
        if (!cmd || s.find(roff(name) + "\\fR") == std::string::npos)
            list += (list.empty() ? "" : ",\n") + s;
    out += list + "\n";
    return out;
}

// The long and short names of @app's options, for compgen -W.
std::string option_words(const CLI::App &app) {
    std::string out;
    for (const CLI::Option *o : app.get_options()) {
        if (!documented(o))
            continue;
        for (const auto &n : o->get_snames())
            out += (out.empty() ? "-" : " -") + n;
        for (const auto &n : o->get_lnames())
            out += (out.empty() ? "--" : " --") + n;
    }
    return out;
}

} // namespace

bool write_man_pages(CLI::App &app, const std::string &version, const std::string &dir,
                     std::string *error) {
    std::vector<CLI::App *> cmds = {nullptr};
    for (CLI::App *c : app.get_subcommands([](CLI::App *) { return true; }))
        cmds.push_back(c);
    for (CLI::App *c : cmds) {
        const std::string file =
            dir + "/" + (c ? "fusescope-" + c->get_name() : "fusescope") + ".1";
        std::ofstream f(file);
        f << page(app, c, version);
        if (!f) {
            *error = "cannot write " + file;
            return false;
        }
    }
    return true;
}

std::string bash_completion(CLI::App &app, const Completions &values) {
    std::string cmds, per_cmd;
    for (CLI::App *c : app.get_subcommands([](CLI::App *) { return true; })) {
        cmds += (cmds.empty() ? "" : " ") + c->get_name();
        per_cmd += fmt::format("    {}) words=\"{}\" ;;\n", c->get_name(), option_words(*c));
    }
    std::string value_cases;
    for (const auto &[opt, v] : values) {
        std::string action;
        switch (v.kind) {
        case ValueKind::Files:
            action = "compgen -f -- \"$cur\"";
            break;
        case ValueKind::Dirs:
            action = "compgen -d -- \"$cur\"";
            break;
        case ValueKind::Words:
            action = "compgen -W \"" + v.words + "\" -- \"$cur\"";
            break;
        }
        value_cases += fmt::format("    {}) COMPREPLY=($({})); return 0 ;;\n", opt, action);
    }
    return fmt::format(
        R"(# bash completion for fusescope, generated from its command line (fusescope --generate-completion)
_fusescope() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="" cmd="" words="" i
    [ "$COMP_CWORD" -gt 0 ] && prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            {}) cmd="${{COMP_WORDS[i]}}"; break ;;
        esac
    done
    case "$prev" in
{}    esac
    case "$cmd" in
{}    *) words="{} {}" ;;
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o filenames -F _fusescope fusescope
)",
        [&] {
            std::string alt = cmds;
            for (auto &c : alt)
                if (c == ' ')
                    c = '|';
            return alt;
        }(),
        value_cases, per_cmd, cmds, option_words(app));
}

} // namespace fusescope::cli

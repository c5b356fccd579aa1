// fxc shell: one connection for a whole session. Commands as people type them
// (ls get put rm stat login logout help quit) and the lesson's numbered menu
// (1 register, 2 login, 3 download, 4 upload, 5 list, q quit). On a terminal,
// lines are read with libedit: editing, a history file, and tab completion of
// the commands and of the names stored on the server.

#include "fxc.hpp"

#include <editline/readline.h>

#include <signal.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <system_error>

namespace fxc {

namespace {

constexpr const char* menu =
    "  ls   get NAME [FILE]   put FILE [NAME]   rm NAME...   stat NAME\n"
    "  login [USER]   logout   help   quit      (tab completes commands and names)\n"
    "  or: 1 register   2 login   3 download   4 upload   5 list   q quit\n";

constexpr const char* command_words[] = {"ls", "get", "put", "rm", "stat", "login", "logout", "help", "quit"};

/// Raised when input ends in the middle of a question.
struct end_of_input {};
/// Raised by Ctrl-C while a line is being typed: that line (and the command
/// asking it) is dropped, and the shell prompts again.
struct line_interrupted {};

// Set by SIGINT while the shell runs. A signal handler can reach nothing
// else, so this one flag is file-wide; transfers poll it (stop_requested).
volatile std::sig_atomic_t interrupted = 0;

extern "C" void on_shell_interrupt(int)
{
    interrupted = 1;
}

/// Catches Ctrl-C for the shell's lifetime (without SA_RESTART, so a wait
/// returns EINTR and the transfer's next progress check sees the flag).
class interrupt_catcher {
public:
    interrupt_catcher()
    {
        struct sigaction sa {};
        sa.sa_handler = on_shell_interrupt;
        sigemptyset(&sa.sa_mask);
        ::sigaction(SIGINT, &sa, &old_);
    }
    ~interrupt_catcher() { ::sigaction(SIGINT, &old_, nullptr); }
    interrupt_catcher(const interrupt_catcher&) = delete;
    interrupt_catcher& operator=(const interrupt_catcher&) = delete;

private:
    struct sigaction old_ {};
};

std::string trim(std::string s)
{
    const auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string::npos)
        return {};
    const auto last = s.find_last_not_of(" \t\r\n");
    return s.substr(first, last - first + 1);
}

/// Splits a line into words; "double quotes" and backslashes keep spaces in a word.
std::vector<std::string> words_of(const std::string& line)
{
    std::vector<std::string> out;
    std::string word;
    bool in_word = false;
    bool quoted = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (c == '\\' && i + 1 < line.size()) {
            word += line[++i];
            in_word = true;
        } else if (c == '"') {
            quoted = !quoted;
            in_word = true;
        } else if (!quoted && (c == ' ' || c == '\t')) {
            if (in_word)
                out.push_back(std::exchange(word, {}));
            in_word = false;
        } else {
            word += c;
            in_word = true;
        }
    }
    if (in_word)
        out.push_back(word);
    return out;
}

/// What tab completion needs while the shell reads a line. libedit's
/// readline interface calls back without a user pointer, so the shell points
/// this at its session for its lifetime (completion_scope).
struct completion_source {
    fxd::client::session* session = nullptr;
    bool logged_in = false;
};
completion_source* current_source = nullptr;

class completion_scope {
public:
    explicit completion_scope(completion_source& source) { current_source = &source; }
    ~completion_scope() { current_source = nullptr; }
    completion_scope(const completion_scope&) = delete;
    completion_scope& operator=(const completion_scope&) = delete;
};

/// The candidates for the word being completed, filled before each completion.
std::vector<std::string>& candidates()
{
    static std::vector<std::string> list; // readline's generator protocol is stateful by design
    return list;
}

char* next_candidate(const char* text, int state)
{
    static std::size_t index = 0;
    if (state == 0)
        index = 0;
    const std::string_view prefix(text);
    auto& list = candidates();
    while (index < list.size()) {
        const auto& c = list[index++];
        if (c.starts_with(prefix))
            return ::strdup(c.c_str()); // readline frees it
    }
    return nullptr;
}

char** complete(const char* text, int start, int)
{
    auto& list = candidates();
    list.clear();
    const auto before = std::string(rl_line_buffer, rl_line_buffer + start);
    const auto words = words_of(before);
    if (words.empty()) {
        list.assign(std::begin(command_words), std::end(command_words));
    } else if ((words[0] == "get" || words[0] == "rm" || words[0] == "stat") && current_source &&
               current_source->session && current_source->logged_in) {
        try {
            for (const auto& f : current_source->session->list())
                list.push_back(f.name);
        } catch (const std::exception&) {
            // No names to offer (the connection broke, say): nothing completes.
        }
        if (words[0] == "get" && words.size() >= 2)
            return nullptr; // get NAME FILE: the second is a local file
    } else {
        return nullptr; // put FILE, and the rest: readline completes local file names
    }
    rl_attempted_completion_over = 1; // only these, not local files
    return rl_completion_matches(text, next_candidate);
}

/// Reads lines: libedit on a terminal (editing, history, completion), plain
/// lines otherwise.
class line_reader {
public:
    explicit line_reader(bool terminal) : terminal_(terminal)
    {
        if (!terminal_)
            return;
        rl_readline_name = "fxc";
        rl_attempted_completion_function = complete;
        rl_initialize(); // before the history calls: libedit sets its history up here
        stifle_history(1000);
        const auto dir = state_dir();
        if (!dir.empty()) {
            std::error_code ec;
            std::filesystem::create_directories(dir, ec);
            ::chmod(dir.c_str(), 0700); // commands name files: keep them to the user
            history_file_ = (dir / "history").string();
            read_history(history_file_.c_str());
            using_history(); // Up starts from the newest line read
        }
    }
    ~line_reader()
    {
        if (terminal_ && !history_file_.empty()) {
            write_history(history_file_.c_str());
            ::chmod(history_file_.c_str(), 0600);
        }
    }
    line_reader(const line_reader&) = delete;
    line_reader& operator=(const line_reader&) = delete;

    /// nullopt at the end of input. `remember`: add the line to the history.
    std::optional<std::string> read(const std::string& prompt, bool remember)
    {
        if (!terminal_) {
            std::cout << prompt << std::flush;
            std::string line;
            if (!std::getline(std::cin, line))
                return std::nullopt;
            return line;
        }
        char* raw = readline(prompt.c_str());
        if (!raw && interrupted != 0) {
            // libedit hands Ctrl-C to the shell's handler and gives up the line.
            interrupted = 0;
            std::cout << "\n";
            throw line_interrupted{};
        }
        if (!raw)
            return std::nullopt;
        std::string line(raw);
        std::free(raw);
        if (remember && !trim(line).empty())
            add_history(line.c_str());
        return line;
    }

private:
    bool terminal_;
    std::string history_file_;
};

class shell {
public:
    shell(const options& opts, fxd::client::session& s)
        : opts_(with_interrupt(opts)), out_(opts_), s_(s), reader_(::isatty(STDIN_FILENO) == 1)
    {
    }

    int run()
    {
        const completion_scope scope(source_);
        source_.session = &s_;
        std::cout << "fxc shell, connected to " << s_.host() << ":" << s_.port() << "\n" << menu << std::flush;
        for (;;) {
            std::optional<std::string> line;
            try {
                line = reader_.read("fxc" + (user_ ? " [" + *user_ + "]" : std::string()) + "> ", true);
            } catch (const line_interrupted&) {
                continue;
            }
            if (!line) {
                std::cout << "\n";
                return exit_ok;
            }
            interrupted = 0; // a Ctrl-C at the prompt cancels nothing that follows
            const auto words = words_of(*line);
            if (words.empty())
                continue;
            try {
                if (!run_one(words))
                    return exit_ok;
            } catch (const end_of_input&) {
                std::cout << "\n";
                return exit_ok;
            } catch (const line_interrupted&) {
                // A question dropped with Ctrl-C: the command is not run.
            } catch (...) {
                report();
            }
            std::cout.flush();
        }
    }

private:
    static options with_interrupt(const options& opts)
    {
        options o = opts;
        o.json = false; // the shell talks to people
        o.stop_requested = [] { return interrupted != 0; };
        return o;
    }

    std::string ask(const std::string& question, const std::string& fallback = {})
    {
        const auto line = reader_.read(question + (fallback.empty() ? "" : " [" + fallback + "]") + ": ", false);
        if (!line)
            throw end_of_input{};
        const auto answer = trim(*line);
        return answer.empty() ? fallback : answer;
    }

    /// A password, typed without echo. Ctrl-C drops the question (the shell's
    /// handler stays: the one-shot prompt's would end the program).
    static std::string ask_secret(const std::string& question)
    {
        // Echo goes off before the question shows, so nothing typed after it is echoed.
        termios saved{};
        const bool terminal = ::tcgetattr(STDIN_FILENO, &saved) == 0;
        if (terminal) {
            termios quiet = saved;
            quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
            quiet.c_lflag |= ECHONL;
            ::tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
        }
        std::cout << question << ": " << std::flush;
        std::string line;
        const bool got = static_cast<bool>(std::getline(std::cin, line));
        if (terminal)
            ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
        else
            std::cout << "\n";
        if (!got && interrupted != 0) {
            interrupted = 0;
            std::cin.clear();
            std::clearerr(stdin); // the interrupted read left its error on the C stream under std::cin
            std::cout << "\n";
            throw line_interrupted{};
        }
        if (!got)
            throw end_of_input{};
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        return line;
    }

    void log_in(const std::string& name)
    {
        // A login remembered by `fxc login` serves here too.
        if (const auto token = credentials_file().token(server_key(opts_), name)) {
            try {
                user_ = s_.login_token(name, *token);
                source_.logged_in = true;
                std::cout << "logged in as " << *user_ << " (remembered login)\n";
                return;
            } catch (const fxd::client::server_error&) {
                // Expired or revoked: ask for the password below.
            }
        }
        user_ = s_.login(name, ask_secret("password"));
        source_.logged_in = true;
        std::cout << "logged in as " << *user_ << "\n";
    }

    /// Runs one command; false to leave the shell.
    bool run_one(const std::vector<std::string>& words)
    {
        const auto& cmd = words[0];
        const std::vector<std::string> args(words.begin() + 1, words.end());
        if (cmd == "q" || cmd == "quit" || cmd == "exit" || cmd == "bye") {
            std::cout << "bye\n";
            return false;
        }
        if (cmd == "?" || cmd == "h" || cmd == "help") {
            std::cout << menu;
        } else if (cmd == "1") {
            const auto name = ask("user", opts_.user.value_or(""));
            const auto password = ask_secret("password");
            if (ask_secret("repeat the password") != password) {
                std::cout << "the two passwords differ; nothing done\n";
                return true;
            }
            std::cout << "registered " << s_.register_user(name, password) << "; choose 2 to log in\n";
        } else if (cmd == "2" || (cmd == "login" && args.empty())) {
            log_in(ask("user", user_.value_or(opts_.user.value_or(""))));
        } else if (cmd == "login") {
            log_in(args[0]);
        } else if (cmd == "logout") {
            s_.logout();
            user_.reset();
            source_.logged_in = false;
            std::cout << "logged out\n";
        } else if (cmd == "3") {
            const auto name = ask("name");
            check_file_name(name);
            do_download(opts_, out_, s_, name, ask("save as", name));
        } else if (cmd == "get") {
            if (args.empty() || args.size() > 2)
                throw usage_error("get NAME [FILE]");
            do_download(opts_, out_, s_, args[0], args.size() > 1 ? args[1] : args[0]);
        } else if (cmd == "4") {
            const auto file = ask("file");
            if (file.empty())
                throw usage_error("no file given");
            do_upload(opts_, out_, s_, file, ask("name", std::filesystem::path(file).filename().string()));
        } else if (cmd == "put") {
            if (args.empty() || args.size() > 2)
                throw usage_error("put FILE [NAME]");
            do_upload(opts_, out_, s_, args[0],
                      args.size() > 1 ? args[1] : std::filesystem::path(args[0]).filename().string());
        } else if (cmd == "5" || cmd == "ls" || cmd == "list") {
            do_list(out_, s_);
        } else if (cmd == "stat") {
            if (args.size() != 1)
                throw usage_error("stat NAME");
            do_stat(out_, s_, args[0]);
        } else if (cmd == "rm" || cmd == "delete") {
            if (args.empty())
                throw usage_error("rm NAME...");
            for (const auto& name : args) {
                s_.remove(name);
                std::cout << "deleted " << name << "\n";
            }
        } else {
            std::cout << "unknown command '" << cmd << "'\n" << menu;
        }
        return true;
    }

    /// Says what went wrong with the command being handled; the shell goes on.
    void report()
    {
        try {
            throw;
        } catch (const fxd::client::server_error& e) {
            std::cout << "error: " << e.message() << " (" << e.code() << ")\n";
            if (e.code() == "unauthorized")
                std::cout << "hint: log in first ('login USER', or 2)\n";
            else if (const auto hint = hint_for(e.code()); !hint.empty())
                std::cout << "hint: " << hint << "\n";
        } catch (const fxd::client::cancelled_error&) {
            std::cout << "interrupted; what arrived is kept: run the same command again to resume\n";
            source_.logged_in = user_.has_value(); // the session logs in again as it reconnects
        } catch (const fxd::client::connection_error& e) {
            std::cout << "error: the connection to " << s_.host() << ":" << s_.port() << " broke: " << e.what()
                      << "\nhint: the next command reconnects (and logs in again); is fxd still running?\n";
        } catch (const std::exception& e) {
            std::cout << "error: " << e.what() << "\n";
        }
    }

    options opts_;
    output out_;
    fxd::client::session& s_;
    line_reader reader_;
    std::optional<std::string> user_;
    completion_source source_;
};

} // namespace

int run_shell(const options& opts, const output&, fxd::client::session& s)
{
    const interrupt_catcher catcher;
    return shell(opts, s).run();
}

} // namespace fxc

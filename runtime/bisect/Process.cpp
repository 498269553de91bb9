//===- Process.cpp - Run a tool with a time limit, keep its output -*- C++ -*-===//
#include "greta/bisect/Process.h"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace greta::bisect {

std::string ProcessResult::describe() const {
  std::ostringstream os;
  if (timedOut)
    os << "timed out";
  else if (signaled)
    os << "killed by signal " << signal << " (" << strsignal(signal) << ")";
  else
    os << "exit code " << exitCode;
  return os.str();
}

static std::string readTail(const std::string &path, size_t maxBytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in)
    return {};
  std::streamoff size = in.tellg();
  std::streamoff start = size > static_cast<std::streamoff>(maxBytes)
                             ? size - static_cast<std::streamoff>(maxBytes)
                             : 0;
  in.seekg(start);
  std::string tail(static_cast<size_t>(size - start), '\0');
  in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  return tail;
}

namespace {
volatile sig_atomic_t interruptedBy = 0;
volatile sig_atomic_t childGroup = 0; // the running child's group, 0 if none

void onInterrupt(int sig) {
  bool again = interruptedBy != 0;
  if (!again)
    interruptedBy = sig;
  pid_t group = childGroup;
  if (group > 0)
    kill(-group, again ? SIGKILL : sig);
}

const int kForwardedSignals[] = {SIGINT, SIGTERM, SIGHUP};
// Which of them greta-bisect caught; one it found ignored (nohup, a
// background job's SIGINT) stays ignored, in its runs too.
bool caught[3] = {false, false, false};
} // namespace

void installInterruptForwarding() {
  struct sigaction sa, old;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = onInterrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  for (int i = 0; i < 3; ++i) {
    if (sigaction(kForwardedSignals[i], nullptr, &old) == 0 &&
        old.sa_handler == SIG_IGN)
      continue;
    caught[i] = sigaction(kForwardedSignals[i], &sa, nullptr) == 0;
  }
}

int interruptSignal() { return interruptedBy; }

ProcessResult runProcess(const std::vector<std::string> &argv,
                         const std::string &logPath, double timeoutSeconds,
                         const std::string &stdoutPath, const EnvVars &env) {
  ProcessResult result;
  // The interrupt handler must see the child's group as soon as it exists:
  // the signals wait until childGroup is set.
  sigset_t forwarded, previous;
  sigemptyset(&forwarded);
  for (int sig : kForwardedSignals)
    sigaddset(&forwarded, sig);
  sigprocmask(SIG_BLOCK, &forwarded, &previous);
  if (interruptedBy != 0) {
    sigprocmask(SIG_SETMASK, &previous, nullptr);
    result.interrupted = true;
    return result;
  }
  pid_t pid = fork();
  if (pid < 0) {
    sigprocmask(SIG_SETMASK, &previous, nullptr);
    result.outputTail = std::string("fork failed: ") + strerror(errno);
    return result;
  }
  if (pid == 0) {
    setpgid(0, 0); // own group: a timeout kills the tool and its children
    for (int i = 0; i < 3; ++i)
      if (caught[i])
        signal(kForwardedSignals[i], SIG_DFL);
    sigprocmask(SIG_SETMASK, &previous, nullptr);
    int fd = open(logPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    if (!stdoutPath.empty()) {
      int out = open(stdoutPath.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (out >= 0) {
        dup2(out, STDOUT_FILENO);
        close(out);
      }
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0)
      dup2(devnull, STDIN_FILENO);
    std::vector<char *> args;
    for (const std::string &a : argv)
      args.push_back(const_cast<char *>(a.c_str()));
    args.push_back(nullptr);
    for (const auto &[name, value] : env)
      setenv(name.c_str(), value.c_str(), 1);
    execvp(args[0], args.data());
    fprintf(stderr, "greta-bisect: cannot execute %s: %s\n", args[0],
            strerror(errno));
    _exit(127);
  }
  setpgid(pid, pid);
  childGroup = pid;
  sigprocmask(SIG_SETMASK, &previous, nullptr);
  auto start = std::chrono::steady_clock::now();
  int status = 0;
  while (true) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      break;
    if (r < 0 && errno != EINTR) {
      childGroup = 0;
      result.outputTail = std::string("waitpid failed: ") + strerror(errno);
      return result;
    }
    double elapsed = std::chrono::duration<double>(
                         std::chrono::steady_clock::now() - start)
                         .count();
    if (timeoutSeconds > 0 && elapsed > timeoutSeconds) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      result.timedOut = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  childGroup = 0;
  result.interrupted = interruptedBy != 0;
  if (!result.timedOut) {
    if (WIFSIGNALED(status)) {
      result.signaled = true;
      result.signal = WTERMSIG(status);
    } else if (WIFEXITED(status)) {
      result.exitCode = WEXITSTATUS(status);
    }
  }
  result.outputTail = readTail(logPath, 4000);
  return result;
}

bool splitFlags(const std::string &text, std::vector<std::string> &out,
                std::string &error) {
  std::string cur;
  bool inWord = false;
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else if (c == '\\' && quote == '"' && i + 1 < text.size() &&
                 (text[i + 1] == '"' || text[i + 1] == '\\')) {
        cur += text[++i];
      } else {
        cur += c;
      }
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      inWord = true;
    } else if (c == '\\' && i + 1 < text.size()) {
      cur += text[++i];
      inWord = true;
    } else if (isspace(static_cast<unsigned char>(c))) {
      if (inWord)
        out.push_back(cur);
      cur.clear();
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) {
    error = std::string("unbalanced ") + quote + " quote";
    return false;
  }
  if (inWord)
    out.push_back(cur);
  return true;
}

std::string shellQuote(const std::string &arg) {
  if (!arg.empty() &&
      arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                            "0123456789-_=./,:+@%") == std::string::npos)
    return arg;
  std::string q = "'";
  for (char c : arg)
    q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string commandLine(const std::vector<std::string> &argv) {
  std::string cmd;
  for (const std::string &a : argv)
    cmd += (cmd.empty() ? "" : " ") + shellQuote(a);
  return cmd;
}

} // namespace greta::bisect

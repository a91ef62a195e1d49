// Offline checks of the Kubernetes manifests in deploy/k8s: what `kubectl apply` would only find
// out on a cluster (a Service selecting nothing, a probe on a port the container lacks, a
// ConfigMap nobody created) and what only this project knows (the gateway's --workers-dns must
// name the workers' headless Service, the grace period must outlast --drain-timeout, the rules
// ConfigMap must be the promtool-checked files of deploy/prometheus).
//
// check_manifests() returns a list of problems: empty for the repository's manifests, naming the
// defect for deliberately broken copies made at test time.

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------------------------
// What the checks know about Kubernetes and about this service.

// Current apiVersion of every kind the manifests may use; any other kind is a problem.
const std::map<std::string, std::string> k_api_versions = {
    {"Namespace", "v1"},
    {"ConfigMap", "v1"},
    {"Secret", "v1"},
    {"Service", "v1"},
    {"ServiceAccount", "v1"},
    {"PersistentVolumeClaim", "v1"},
    {"Deployment", "apps/v1"},
    {"StatefulSet", "apps/v1"},
    {"DaemonSet", "apps/v1"},
    {"HorizontalPodAutoscaler", "autoscaling/v2"},
    {"PodDisruptionBudget", "policy/v1"},
    {"NetworkPolicy", "networking.k8s.io/v1"},
    {"Ingress", "networking.k8s.io/v1"},
    {"Role", "rbac.authorization.k8s.io/v1"},
    {"RoleBinding", "rbac.authorization.k8s.io/v1"},
    {"ClusterRole", "rbac.authorization.k8s.io/v1"},
    {"ClusterRoleBinding", "rbac.authorization.k8s.io/v1"},
    {"ServiceMonitor", "monitoring.coreos.com/v1"},
    {"PodMonitor", "monitoring.coreos.com/v1"},
    {"PrometheusRule", "monitoring.coreos.com/v1"},
};
const std::set<std::string> k_cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"};
const std::set<std::string> k_workload_kinds = {"Deployment", "StatefulSet", "DaemonSet"};
const std::array<const char*, 3> k_probe_kinds = {"startupProbe", "readinessProbe",
                                                  "livenessProbe"};

// The containers this project deploys, by container name.
constexpr const char* k_gateway_container = "embedd";
constexpr const char* k_worker_container = "gpu-worker";
constexpr const char* k_gpu_resource = "nvidia.com/gpu";
constexpr const char* k_rules_configmap = "prometheus-rules";
constexpr const char* k_prometheus_configmap = "prometheus-config";
// After --drain-timeout both binaries give the transport 2 s to shut down, then stop actors:
// the grace period must cover the drain plus this.
constexpr double k_drain_margin_s = 5;
constexpr long k_default_grace_s = 30; // Kubernetes' default terminationGracePeriodSeconds

// ---------------------------------------------------------------------------------------------
// YAML helpers (const access only: yaml-cpp's non-const operator[] inserts).

using labels_t = std::map<std::string, std::string>;

YAML::Node at(const YAML::Node& n, const std::string& key) {
  if (n && n.IsMap())
    return n[key];
  return YAML::Node(YAML::NodeType::Undefined);
}

std::string str(const YAML::Node& n) {
  if (n && n.IsScalar())
    return n.Scalar();
  return {};
}

std::vector<YAML::Node> seq(const YAML::Node& n) {
  std::vector<YAML::Node> out;
  if (n && n.IsSequence())
    for (const auto& e : n)
      out.push_back(e);
  return out;
}

labels_t string_map(const YAML::Node& n) {
  labels_t out;
  if (n && n.IsMap())
    for (const auto& kv : n)
      out[kv.first.Scalar()] = str(kv.second);
  return out;
}

std::optional<long> to_long(const std::string& s) {
  if (s.empty())
    return std::nullopt;
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (*end != '\0')
    return std::nullopt;
  return v;
}

std::optional<double> to_double(const std::string& s) {
  if (s.empty())
    return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (*end != '\0')
    return std::nullopt;
  return v;
}

// An unquoted integer scalar (a quoted "50052" is a string to Kubernetes, i.e. a port *name*).
std::optional<long> int_scalar(const YAML::Node& n) {
  if (!n || !n.IsScalar() || n.Tag() == "!")
    return std::nullopt;
  return to_long(n.Scalar());
}

bool subset(const labels_t& selector, const labels_t& labels) {
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || it->second != v)
      return false;
  }
  return true;
}

std::string show(const labels_t& m) {
  std::string s = "{";
  for (const auto& [k, v] : m)
    s += (s.size() > 1 ? ", " : "") + k + "=" + v;
  return s + "}";
}

// "HOST:PORT" → (host, port); host may be "[v6]".
std::optional<std::pair<std::string, long>> split_host_port(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return std::nullopt;
  auto port = to_long(s.substr(colon + 1));
  if (!port || *port <= 0 || *port > 65535)
    return std::nullopt;
  return std::make_pair(s.substr(0, colon), *port);
}

// ---------------------------------------------------------------------------------------------
// Loading.

struct document {
  std::string source; // file (or "kubectl kustomize") it came from
  YAML::Node node;
};

struct manifest_set {
  std::vector<document> docs;
  std::string default_namespace = "default"; // kustomization's `namespace:`, if any
  std::vector<std::string> problems;         // what loading found
};

void add_documents(manifest_set& out, const std::string& text, const std::string& source) {
  try {
    for (const auto& node : YAML::LoadAll(text))
      if (node && !node.IsNull())
        out.docs.push_back({source, node});
  } catch (const YAML::Exception& e) {
    out.problems.push_back(source + ": does not parse as YAML: " + e.what());
  }
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Every file kustomization.yaml lists, parsed (multi-document).
manifest_set load_kustomization(const fs::path& dir) {
  manifest_set out;
  auto kfile = dir / "kustomization.yaml";
  if (!fs::exists(kfile)) {
    out.problems.push_back(kfile.string() + ": missing");
    return out;
  }
  YAML::Node k;
  try {
    k = YAML::LoadFile(kfile.string());
  } catch (const YAML::Exception& e) {
    out.problems.push_back(kfile.string() + ": does not parse: " + e.what());
    return out;
  }
  if (str(at(k, "kind")) != "Kustomization" ||
      str(at(k, "apiVersion")) != "kustomize.config.k8s.io/v1beta1")
    out.problems.push_back("kustomization.yaml: expected apiVersion "
                           "kustomize.config.k8s.io/v1beta1, kind Kustomization");
  if (auto ns = str(at(k, "namespace")); !ns.empty())
    out.default_namespace = ns;
  auto resources = seq(at(k, "resources"));
  if (resources.empty())
    out.problems.push_back("kustomization.yaml: no resources");
  for (const auto& r : resources) {
    auto name = str(r);
    auto path = dir / name;
    if (!fs::is_regular_file(path)) {
      out.problems.push_back("kustomization.yaml: resource " + name + " is not a file in " +
                             dir.string());
      continue;
    }
    auto before = out.docs.size();
    add_documents(out, read_file(path), name);
    if (out.docs.size() == before)
      out.problems.push_back(name + ": no documents");
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The model the checks work on.

struct object {
  const document* doc;
  std::string kind, api_version, name, ns;
  const YAML::Node& node() const { return doc->node; }
  std::string id() const {
    return doc->source + ": " + kind + " " + (ns.empty() ? "" : ns + "/") + name;
  }
};

struct workload {
  const object* obj;
  labels_t pod_labels;
  labels_t pod_annotations;
  YAML::Node pod_spec;
};

struct container_ref {
  const workload* wl;
  YAML::Node c;
  std::string name;
};

class checker {
public:
  checker(const manifest_set& set, fs::path prometheus_dir)
      : set_(set), prometheus_dir_(std::move(prometheus_dir)) {}

  std::vector<std::string> run() {
    problems_ = set_.problems;
    index();
    for (const auto& w : workloads_)
      check_workload(w);
    for (const auto& o : objects_) {
      if (o.kind == "Service")
        check_service(o);
      else if (o.kind == "HorizontalPodAutoscaler")
        check_hpa(o);
      else if (o.kind == "PodDisruptionBudget")
        check_pdb(o);
    }
    check_worker(); // before the gateway, whose discovery must reach it
    check_gateway();
    check_rules();
    check_prometheus_config();
    return problems_;
  }

private:
  void problem(const std::string& s) { problems_.push_back(s); }

  // --- objects -------------------------------------------------------------------------------

  // Builds objects_ completely before workloads_ point into it (and workloads_ before
  // containers_ point into that), so no pointer is invalidated by a later push_back.
  void index() {
    std::set<std::string> seen;
    for (const auto& d : set_.docs) {
      if (!d.node.IsMap()) {
        problem(d.source + ": a document is not a mapping");
        continue;
      }
      object o{&d, str(at(d.node, "kind")), str(at(d.node, "apiVersion")),
               str(at(at(d.node, "metadata"), "name")),
               str(at(at(d.node, "metadata"), "namespace"))};
      if (o.kind.empty() || o.api_version.empty() || o.name.empty()) {
        problem(d.source + ": a document lacks kind, apiVersion or metadata.name");
        continue;
      }
      auto known = k_api_versions.find(o.kind);
      if (known == k_api_versions.end())
        problem(o.id() + ": unknown kind " + o.kind + " (not in the test's apiVersion table)");
      else if (known->second != o.api_version)
        problem(o.id() + ": apiVersion " + o.api_version + ", the current one is " + known->second);
      if (k_cluster_scoped.count(o.kind)) {
        if (!o.ns.empty())
          problem(o.id() + ": cluster-scoped kind with a namespace");
      } else if (o.ns.empty()) {
        o.ns = set_.default_namespace;
      }
      if (!seen.insert(o.kind + "/" + o.ns + "/" + o.name).second)
        problem(o.id() + ": defined twice");
      objects_.push_back(o);
    }
    for (const auto& o : objects_)
      if (o.kind == "Namespace")
        namespaces_.insert(o.name);
    for (const auto& o : objects_) {
      if (!k_cluster_scoped.count(o.kind) && !namespaces_.count(o.ns))
        problem(o.id() + ": namespace " + o.ns + " is not declared by a Namespace manifest");
      if (k_workload_kinds.count(o.kind)) {
        auto tmpl = at(at(o.node(), "spec"), "template");
        workloads_.push_back({&o, string_map(at(at(tmpl, "metadata"), "labels")),
                              string_map(at(at(tmpl, "metadata"), "annotations")),
                              at(tmpl, "spec")});
      }
    }
  }

  const object* find(const std::string& kind, const std::string& ns, const std::string& name) {
    for (const auto& o : objects_)
      if (o.kind == kind && o.ns == ns && o.name == name)
        return &o;
    return nullptr;
  }

  std::vector<const workload*> selected(const std::string& ns, const labels_t& selector) {
    std::vector<const workload*> out;
    if (selector.empty())
      return out;
    for (const auto& w : workloads_)
      if (w.obj->ns == ns && subset(selector, w.pod_labels))
        out.push_back(&w);
    return out;
  }

  // Keys of a ConfigMap's or Secret's data, or nullopt when it does not exist.
  std::optional<std::set<std::string>> keys_of(const std::string& kind, const std::string& ns,
                                               const std::string& name) {
    auto* o = find(kind, ns, name);
    if (!o)
      return std::nullopt;
    std::set<std::string> keys;
    for (const char* field : {"data", "binaryData", "stringData"})
      for (const auto& [k, v] : string_map(at(o->node(), field)))
        keys.insert(k);
    return keys;
  }

  // --- pods ----------------------------------------------------------------------------------

  static std::vector<YAML::Node> containers_of(const YAML::Node& pod_spec) {
    auto out = seq(at(pod_spec, "containers"));
    for (const auto& c : seq(at(pod_spec, "initContainers")))
      out.push_back(c);
    return out;
  }

  static std::optional<long> container_port(const YAML::Node& c, const std::string& name) {
    for (const auto& p : seq(at(c, "ports")))
      if (str(at(p, "name")) == name)
        return int_scalar(at(p, "containerPort"));
    return std::nullopt;
  }

  static bool has_container_port(const YAML::Node& c, long port) {
    for (const auto& p : seq(at(c, "ports")))
      if (int_scalar(at(p, "containerPort")) == port)
        return true;
    return false;
  }

  static bool valid_port_name(const std::string& n) {
    if (n.empty() || n.size() > 15 || n.front() == '-' || n.back() == '-' ||
        n.find("--") != std::string::npos)
      return false;
    bool letter = false;
    for (char ch : n) {
      if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
        return false;
      letter |= ch >= 'a' && ch <= 'z';
    }
    return letter;
  }

  // The environment a container's $(VAR) references see: envFrom, then env.
  std::map<std::string, std::string> environment(const workload& w, const YAML::Node& c,
                                                 const std::string& where) {
    std::map<std::string, std::string> env;
    const auto& ns = w.obj->ns;
    for (const auto& ef : seq(at(c, "envFrom"))) {
      auto prefix = str(at(ef, "prefix"));
      for (const char* kind : {"ConfigMap", "Secret"}) {
        auto ref = at(ef, kind == std::string("ConfigMap") ? "configMapRef" : "secretRef");
        if (!ref)
          continue;
        auto name = str(at(ref, "name"));
        auto* o = find(kind, ns, name);
        if (!o) {
          if (str(at(ref, "optional")) != "true")
            problem(where + ": envFrom " + kind + " " + name + " does not exist");
          continue;
        }
        for (const char* field : {"data", "stringData"})
          for (const auto& [k, v] : string_map(at(o->node(), field)))
            env[prefix + k] = v;
      }
    }
    for (const auto& e : seq(at(c, "env"))) {
      auto name = str(at(e, "name"));
      auto from = at(e, "valueFrom");
      if (!from) {
        env[name] = str(at(e, "value"));
        continue;
      }
      for (const char* kind : {"ConfigMap", "Secret"}) {
        auto ref = at(from, kind == std::string("ConfigMap") ? "configMapKeyRef" : "secretKeyRef");
        if (!ref)
          continue;
        auto ref_name = str(at(ref, "name"));
        auto key = str(at(ref, "key"));
        auto keys = keys_of(kind, ns, ref_name);
        if (str(at(ref, "optional")) == "true")
          continue;
        if (!keys)
          problem(where + ": env " + name + " refers to " + kind + " " + ref_name +
                  ", which does not exist");
        else if (!keys->count(key))
          problem(where + ": env " + name + " refers to key " + key + " that " + kind + " " +
                  ref_name + " lacks");
        else if (auto* o = find(kind, ns, ref_name))
          env[name] = str(at(at(o->node(), "data"), key));
      }
      if (!env.count(name))
        env[name] = ""; // fieldRef and the like: defined, value known only at run time
    }
    return env;
  }

  // Kubernetes' $(VAR) expansion of command and args; an undefined VAR stays literally.
  std::string expand(const std::string& s, const std::map<std::string, std::string>& env,
                     const std::string& where) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s.compare(i, 2, "$$") == 0) {
        out += '$';
        ++i;
      } else if (s.compare(i, 2, "$(") == 0 && s.find(')', i) != std::string::npos) {
        auto close = s.find(')', i);
        auto name = s.substr(i + 2, close - i - 2);
        auto it = env.find(name);
        if (it == env.end()) {
          problem(where + ": $(" + name + ") in the arguments is not a defined variable");
          out += s.substr(i, close - i + 1);
        } else {
          out += it->second;
        }
        i = close;
      } else {
        out += s[i];
      }
    }
    return out;
  }

  void check_probe(const std::string& where, const std::string& kind, const YAML::Node& probe,
                   const YAML::Node& c) {
    int handlers = 0;
    for (const char* h : {"httpGet", "tcpSocket", "grpc", "exec"})
      handlers += at(probe, h) ? 1 : 0;
    if (handlers != 1)
      problem(where + ": " + kind + " needs exactly one of httpGet, tcpSocket, grpc, exec");
    for (const char* h : {"httpGet", "tcpSocket"}) {
      auto port = at(at(probe, h), "port");
      if (!port)
        continue;
      if (auto n = int_scalar(port)) {
        if (!has_container_port(c, *n))
          problem(where + ": " + kind + " " + h + " port " + std::to_string(*n) +
                  " is not a container port");
      } else if (!container_port(c, str(port))) {
        problem(where + ": " + kind + " " + h + " port '" + str(port) +
                "' is not a named port of the container");
      }
    }
    if (auto grpc = at(probe, "grpc")) {
      auto n = int_scalar(at(grpc, "port"));
      if (!n)
        problem(where + ": " + kind + " grpc port '" + str(at(grpc, "port")) +
                "' must be a number (Kubernetes' grpc probes take no port names)");
      else if (!has_container_port(c, *n))
        problem(where + ": " + kind + " grpc port " + std::to_string(*n) +
                " is not a container port");
    }
  }

  void check_volume_refs(const workload& w, const std::string& where) {
    const auto& ns = w.obj->ns;
    auto ref = [&](const char* kind, const std::string& name, const YAML::Node& items,
                   const YAML::Node& optional) {
      if (str(optional) == "true")
        return;
      auto keys = keys_of(kind, ns, name);
      if (!keys) {
        problem(where + ": volume refers to " + std::string(kind) + " " + name +
                ", which does not exist");
        return;
      }
      for (const auto& item : seq(items))
        if (!keys->count(str(at(item, "key"))))
          problem(where + ": volume item " + str(at(item, "key")) + " is not a key of " + kind +
                  " " + name);
    };
    for (const auto& v : seq(at(w.pod_spec, "volumes"))) {
      if (auto cm = at(v, "configMap"))
        ref("ConfigMap", str(at(cm, "name")), at(cm, "items"), at(cm, "optional"));
      if (auto s = at(v, "secret"))
        ref("Secret", str(at(s, "secretName")), at(s, "items"), at(s, "optional"));
      for (const auto& src : seq(at(at(v, "projected"), "sources"))) {
        if (auto cm = at(src, "configMap"))
          ref("ConfigMap", str(at(cm, "name")), at(cm, "items"), at(cm, "optional"));
        if (auto s = at(src, "secret"))
          ref("Secret", str(at(s, "name")), at(s, "items"), at(s, "optional"));
      }
      if (auto pvc = at(v, "persistentVolumeClaim")) {
        auto claim = str(at(pvc, "claimName"));
        if (!find("PersistentVolumeClaim", ns, claim))
          problem(where + ": volume refers to PersistentVolumeClaim " + claim +
                  ", which does not exist");
      }
    }
  }

  void check_workload(const workload& w) {
    auto where = w.obj->id();
    auto selector = string_map(at(at(at(w.obj->node(), "spec"), "selector"), "matchLabels"));
    if (selector.empty() || !subset(selector, w.pod_labels))
      problem(where + ": spec.selector.matchLabels " + show(selector) +
              " does not select its own pod template labels " + show(w.pod_labels));
    auto containers = containers_of(w.pod_spec);
    if (seq(at(w.pod_spec, "containers")).empty())
      problem(where + ": no containers");
    check_volume_refs(w, where);
    std::set<std::string> volumes, port_names;
    for (const auto& v : seq(at(w.pod_spec, "volumes")))
      volumes.insert(str(at(v, "name")));

    long grace = k_default_grace_s;
    if (auto g = int_scalar(at(w.pod_spec, "terminationGracePeriodSeconds")))
      grace = *g;

    for (const auto& c : containers) {
      auto cwhere = where + " container " + str(at(c, "name"));
      if (str(at(c, "image")).empty())
        problem(cwhere + ": no image");
      for (const auto& p : seq(at(c, "ports"))) {
        auto n = int_scalar(at(p, "containerPort"));
        if (!n || *n <= 0 || *n > 65535)
          problem(cwhere + ": containerPort '" + str(at(p, "containerPort")) + "' is not a port");
        auto name = str(at(p, "name"));
        if (name.empty())
          continue;
        if (!valid_port_name(name))
          problem(cwhere + ": port name '" + name + "' is not a valid IANA service name");
        if (!port_names.insert(name).second)
          problem(cwhere + ": port name '" + name + "' used twice in the pod");
      }
      auto resources = at(c, "resources");
      for (const char* side : {"requests", "limits"})
        for (const char* r : {"cpu", "memory"})
          if (str(at(at(resources, side), r)).empty())
            problem(cwhere + ": no resources." + side + "." + r);
      for (const char* p : k_probe_kinds)
        if (auto probe = at(c, p))
          check_probe(cwhere, p, probe, c);
      for (const auto& m : seq(at(c, "volumeMounts")))
        if (!volumes.count(str(at(m, "name"))))
          problem(cwhere + ": volumeMount " + str(at(m, "name")) + " names no pod volume");

      auto env = environment(w, c, cwhere);
      std::vector<std::string> args;
      for (const char* field : {"command", "args"})
        for (const auto& a : seq(at(c, field)))
          args.push_back(expand(str(a), env, cwhere));
      if (auto drain = option(args, "--drain-timeout")) {
        auto d = to_double(*drain);
        if (!d)
          problem(cwhere + ": --drain-timeout '" + *drain + "' is not a number");
        else if (grace < *d + k_drain_margin_s)
          problem(where + ": terminationGracePeriodSeconds " + std::to_string(grace) +
                  " does not outlast --drain-timeout " + *drain + " s plus " +
                  std::to_string(static_cast<int>(k_drain_margin_s)) + " s of shutdown");
      }
      containers_.push_back({&w, c, str(at(c, "name"))});
      args_[containers_.size() - 1] = args;
    }

    if (string_map_get(w.pod_annotations, "prometheus.io/scrape") == "true") {
      auto port_text = string_map_get(w.pod_annotations, "prometheus.io/port");
      auto port = to_long(port_text);
      bool found = false;
      for (const auto& c : containers)
        found |= port && has_container_port(c, *port);
      if (!found)
        problem(where + ": annotation prometheus.io/port '" + port_text +
                "' is not a container port");
    }
  }

  // The value of --name=V or --name V; nullopt when absent; "" for a bare flag.
  static std::optional<std::string> option(const std::vector<std::string>& args,
                                           const std::string& name) {
    for (size_t i = 0; i < args.size(); ++i) {
      if (args[i].rfind(name + "=", 0) == 0)
        return args[i].substr(name.size() + 1);
      if (args[i] == name)
        return i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0 ? args[i + 1] : std::string();
    }
    return std::nullopt;
  }

  // --- Services, HPA, PDB --------------------------------------------------------------------

  // The container port a Service port reaches in a selected pod, or nullopt.
  static std::optional<long> target_in(const YAML::Node& svc_port, const workload& w) {
    auto target = at(svc_port, "targetPort");
    if (!target)
      target = at(svc_port, "port");
    for (const auto& c : containers_of(w.pod_spec)) {
      if (auto n = int_scalar(target)) {
        if (has_container_port(c, *n))
          return *n;
      } else if (auto p = container_port(c, str(target))) {
        return *p;
      }
    }
    return std::nullopt;
  }

  void check_service(const object& o) {
    auto spec = at(o.node(), "spec");
    auto selector = string_map(at(spec, "selector"));
    if (selector.empty()) {
      problem(o.id() + ": no selector");
      return;
    }
    auto pods = selected(o.ns, selector);
    if (pods.empty()) {
      problem(o.id() + ": selector " + show(selector) +
              " matches no Deployment's pod template labels in namespace " + o.ns);
      return;
    }
    auto ports = seq(at(spec, "ports"));
    if (ports.empty())
      problem(o.id() + ": no ports");
    for (const auto& p : ports) {
      if (ports.size() > 1 && str(at(p, "name")).empty())
        problem(o.id() + ": ports must be named when there are several");
      for (const auto* w : pods)
        if (!target_in(p, *w))
          problem(o.id() + ": port " + str(at(p, "name")) + " targetPort '" +
                  str(at(p, "targetPort")) + "' is no container port of " + w->obj->id());
    }
  }

  void check_hpa(const object& o) {
    auto spec = at(o.node(), "spec");
    auto ref = at(spec, "scaleTargetRef");
    if (str(at(ref, "kind")) != "Deployment" || str(at(ref, "apiVersion")) != "apps/v1" ||
        !find("Deployment", o.ns, str(at(ref, "name"))))
      problem(o.id() + ": scaleTargetRef names no Deployment (apps/v1) " + str(at(ref, "name")) +
              " in namespace " + o.ns);
    auto lo = int_scalar(at(spec, "minReplicas")).value_or(1);
    auto hi = int_scalar(at(spec, "maxReplicas"));
    if (!hi || *hi < lo)
      problem(o.id() + ": maxReplicas missing or below minReplicas");
    bool cpu = false;
    for (const auto& m : seq(at(spec, "metrics")))
      cpu |= str(at(m, "type")) == "Resource" && str(at(at(m, "resource"), "name")) == "cpu";
    if (!cpu)
      problem(o.id() + ": no cpu Resource metric");
  }

  void check_pdb(const object& o) {
    auto spec = at(o.node(), "spec");
    auto selector = string_map(at(at(spec, "selector"), "matchLabels"));
    if (selected(o.ns, selector).empty())
      problem(o.id() + ": selector " + show(selector) + " matches no Deployment in namespace " +
              o.ns);
    if (bool(at(spec, "minAvailable")) == bool(at(spec, "maxUnavailable")))
      problem(o.id() + ": needs exactly one of minAvailable, maxUnavailable");
  }

  // --- the gateway and the workers -----------------------------------------------------------

  // The one container of that name, with its expanded command + args.
  const container_ref* role(const char* name, std::vector<std::string>** args) {
    const container_ref* found = nullptr;
    for (size_t i = 0; i < containers_.size(); ++i) {
      if (containers_[i].name != name)
        continue;
      if (found) {
        problem(std::string("container ") + name + " appears in more than one workload");
        return nullptr;
      }
      found = &containers_[i];
      *args = &args_[i];
    }
    if (!found)
      problem(std::string("no workload runs a container named ") + name);
    return found;
  }

  // --listen / --metrics-listen must be the container ports named grpc / metrics.
  void check_listen(const container_ref& r, const std::vector<std::string>& args,
                    const char* option_name, const char* port_name) {
    auto where = r.wl->obj->id() + " container " + r.name;
    auto value = option(args, option_name);
    auto hp = value ? split_host_port(*value) : std::nullopt;
    auto port = container_port(r.c, port_name);
    if (!hp)
      problem(where + ": no " + option_name + " HOST:PORT in the arguments");
    else if (!port || *port != hp->second)
      problem(where + ": " + option_name + " port " + std::to_string(hp->second) +
              " is not the container port named " + port_name);
  }

  // Both binaries refuse plaintext gRPC on a non-loopback address unless told it is meant.
  void check_transport(const container_ref& r, const std::vector<std::string>& args) {
    auto listen = option(args, "--listen");
    auto hp = listen ? split_host_port(*listen) : std::nullopt;
    bool loopback =
        hp && (hp->first == "localhost" || hp->first == "[::1]" || hp->first.rfind("127.", 0) == 0);
    if (hp && !loopback && !option(args, "--allow-insecure-remote") && !option(args, "--tls-cert"))
      problem(r.wl->obj->id() + " container " + r.name + ": --listen " + *listen +
              " is not loopback: needs --tls-cert/--tls-key or --allow-insecure-remote");
  }

  void require_option(const container_ref& r, const std::vector<std::string>& args,
                      const char* name) {
    if (!option(args, name))
      problem(r.wl->obj->id() + " container " + r.name + ": " + name +
              " is not given explicitly in the arguments");
  }

  const container_ref* worker_ = nullptr;

  void check_worker() {
    std::vector<std::string>* args = nullptr;
    worker_ = role(k_worker_container, &args);
    if (!worker_)
      return;
    auto where = worker_->wl->obj->id() + " container " + worker_->name;
    auto res = at(worker_->c, "resources");
    auto gpu_req = str(at(at(res, "requests"), k_gpu_resource));
    auto gpu_lim = str(at(at(res, "limits"), k_gpu_resource));
    if (to_long(gpu_lim).value_or(0) < 1)
      problem(where + ": does not request " + k_gpu_resource);
    else if (!gpu_req.empty() && gpu_req != gpu_lim)
      problem(where + ": " + k_gpu_resource + " requests and limits differ");
    if (std::find(args->begin(), args->end(), "serve") == args->end())
      problem(where + ": does not run `gpu-worker serve`");
    require_option(*worker_, *args, "--drain-timeout");
    check_listen(*worker_, *args, "--listen", "grpc");
    check_listen(*worker_, *args, "--metrics-listen", "metrics");
    check_transport(*worker_, *args);
    // The checkpoint must come from a mounted volume.
    auto model = option(*args, "--model");
    bool mounted = false;
    for (const auto& m : seq(at(worker_->c, "volumeMounts"))) {
      auto mp = str(at(m, "mountPath"));
      mounted |= model && !mp.empty() && model->rfind(mp, 0) == 0;
    }
    if (!model || !mounted)
      problem(where + ": --model is not a folder on a mounted volume");
  }

  void check_gateway() {
    std::vector<std::string>* args = nullptr;
    auto* gw = role(k_gateway_container, &args);
    if (!gw)
      return;
    auto where = gw->wl->obj->id() + " container " + gw->name;
    require_option(*gw, *args, "--drain-timeout");
    check_listen(*gw, *args, "--listen", "grpc");
    check_listen(*gw, *args, "--metrics-listen", "metrics");
    check_transport(*gw, *args);
    if (option(*args, "--workers") || option(*args, "--workers-file"))
      problem(where + ": --workers / --workers-file given; in Kubernetes use --workers-dns");
    check_redis(*gw, *args);
    check_discovery(*gw, *args);
  }

  // --workers-dns <svc>.<ns>.svc.cluster.local:PORT of the workers' headless Service.
  void check_discovery(const container_ref& gw, const std::vector<std::string>& args) {
    auto where = gw.wl->obj->id() + " container " + gw.name;
    auto dns = option(args, "--workers-dns");
    auto hp = dns ? split_host_port(*dns) : std::nullopt;
    if (!hp) {
      problem(where + ": no --workers-dns NAME:PORT");
      return;
    }
    const std::string suffix = ".svc.cluster.local";
    auto host = hp->first;
    auto dot = host.find('.');
    if (host.size() <= suffix.size() || dot == std::string::npos ||
        host.compare(host.size() - suffix.size(), suffix.size(), suffix) != 0) {
      problem(where + ": --workers-dns " + *dns + " is not <service>.<namespace>" + suffix);
      return;
    }
    auto svc_name = host.substr(0, dot);
    auto svc_ns = host.substr(dot + 1, host.size() - suffix.size() - dot - 1);
    auto* svc = find("Service", svc_ns, svc_name);
    if (!svc) {
      problem(where + ": --workers-dns " + *dns + " names no Service " + svc_name +
              " in namespace " + svc_ns);
      return;
    }
    auto spec = at(svc->node(), "spec");
    if (str(at(spec, "clusterIP")) != "None")
      problem(svc->id() + ": --workers-dns needs it headless (clusterIP: None): a ClusterIP "
                          "Service resolves to one virtual IP, not to every worker");
    if (!worker_)
      return;
    auto pods = selected(svc->ns, string_map(at(spec, "selector")));
    if (std::find(pods.begin(), pods.end(), worker_->wl) == pods.end())
      problem(svc->id() + ": the --workers-dns Service does not select the worker pods");
    // Headless: clients connect to the pod IP at the port they name, so that port must be the
    // worker's gRPC container port, and the Service should publish it.
    auto grpc = container_port(worker_->c, "grpc");
    if (!grpc || *grpc != hp->second)
      problem(where + ": --workers-dns port " + std::to_string(hp->second) +
              " is not the worker's gRPC container port");
    bool published = false;
    for (const auto& p : seq(at(spec, "ports")))
      published |= target_in(p, *worker_->wl) == hp->second;
    if (!published)
      problem(svc->id() + ": publishes no port reaching the workers' port " +
              std::to_string(hp->second));
  }

  // --redis HOST:PORT: a Service of this cluster with that port.
  void check_redis(const container_ref& gw, const std::vector<std::string>& args) {
    auto where = gw.wl->obj->id() + " container " + gw.name;
    auto redis = option(args, "--redis");
    if (!redis) {
      problem(where + ": no --redis: the gateways would not share a cache");
      return;
    }
    {
      auto rhp = split_host_port(*redis);
      auto name = rhp ? rhp->first.substr(0, rhp->first.find('.')) : std::string();
      auto rest = rhp && rhp->first.find('.') != std::string::npos
                      ? rhp->first.substr(rhp->first.find('.') + 1)
                      : std::string();
      auto ns = rest.empty() ? gw.wl->obj->ns : rest.substr(0, rest.find('.'));
      auto* rsvc = rhp ? find("Service", ns, name) : nullptr;
      bool port_ok = false;
      if (rsvc)
        for (const auto& p : seq(at(at(rsvc->node(), "spec"), "ports")))
          port_ok |= int_scalar(at(p, "port")) == rhp->second;
      if (!rsvc || !port_ok)
        problem(where + ": --redis " + *redis + " is no Service port in the manifests");
    }
  }

  // --- Prometheus ----------------------------------------------------------------------------

  void check_rules() {
    const object* cm = nullptr;
    for (const auto& o : objects_)
      if (o.kind == "ConfigMap" && o.name == k_rules_configmap)
        cm = &o;
    if (!cm) {
      problem(std::string("no ConfigMap ") + k_rules_configmap);
      return;
    }
    // Every rule file of deploy/prometheus (prometheus.yml is the scrape config, not rules).
    std::set<std::string> expected;
    for (const auto& e : fs::directory_iterator(prometheus_dir_))
      if (e.is_regular_file() && e.path().extension() == ".yml" &&
          e.path().filename() != "prometheus.yml")
        expected.insert(e.path().filename().string());
    auto data = at(cm->node(), "data");
    for (const auto& [key, value] : string_map(data))
      if (!expected.count(key))
        problem(cm->id() + ": data key " + key + " is no rule file of " + prometheus_dir_.string());
    for (const auto& f : expected) {
      auto got = at(data, f);
      if (!got) {
        problem(cm->id() + ": lacks " + f + " (run deploy/k8s/gen-prometheus-rules.sh)");
        continue;
      }
      auto want = read_file(prometheus_dir_ / f);
      auto have = str(got);
      if (have != want) {
        size_t i = 0, line = 1;
        while (i < have.size() && i < want.size() && have[i] == want[i])
          line += have[i++] == '\n';
        problem(cm->id() + ": " + f + " differs from " + (prometheus_dir_ / f).string() +
                " from line " + std::to_string(line) + " (run deploy/k8s/gen-prometheus-rules.sh)");
      }
    }
  }

  // The in-cluster scrape config keeps the job names the rules select on and keeps pods that
  // exist and opt in.
  void check_prometheus_config() {
    const object* cm = nullptr;
    for (const auto& o : objects_)
      if (o.kind == "ConfigMap" && o.name == k_prometheus_configmap)
        cm = &o;
    if (!cm)
      return; // optional: annotations are enough for a Prometheus set up elsewhere
    YAML::Node cfg;
    try {
      cfg = YAML::Load(str(at(at(cm->node(), "data"), "prometheus.yml")));
    } catch (const YAML::Exception& e) {
      problem(cm->id() + ": prometheus.yml does not parse: " + e.what());
      return;
    }
    std::set<std::string> jobs;
    for (const auto& sc : seq(at(cfg, "scrape_configs"))) {
      auto job = str(at(sc, "job_name"));
      jobs.insert(job);
      for (const auto& rc : seq(at(sc, "relabel_configs"))) {
        auto sources = seq(at(rc, "source_labels"));
        if (str(at(rc, "action")) != "keep" || sources.size() != 1 ||
            str(sources[0]) != "__meta_kubernetes_pod_label_app")
          continue;
        auto app = str(at(rc, "regex"));
        bool found = false;
        for (const auto& w : workloads_) {
          auto it = w.pod_labels.find("app");
          found |= it != w.pod_labels.end() && it->second == app &&
                   string_map_get(w.pod_annotations, "prometheus.io/scrape") == "true";
        }
        if (!found)
          problem(cm->id() + ": job " + job + " keeps pods labelled app=" + app +
                  ", but no workload's pods carry it with prometheus.io/scrape \"true\"");
      }
    }
    for (const char* job : {"embedd", "gpu-worker"})
      if (!jobs.count(job))
        problem(cm->id() + ": no scrape job " + job + " (the rules select on job=\"" + job + "\")");
  }

  static std::string string_map_get(const labels_t& m, const std::string& k) {
    auto it = m.find(k);
    return it == m.end() ? std::string() : it->second;
  }

  const manifest_set& set_;
  fs::path prometheus_dir_;
  std::vector<std::string> problems_;
  std::vector<object> objects_;
  std::set<std::string> namespaces_;
  std::vector<workload> workloads_;
  std::vector<container_ref> containers_;
  std::map<size_t, std::vector<std::string>> args_;
};

std::vector<std::string> check_manifests(const manifest_set& set, const fs::path& prometheus_dir) {
  return checker(set, prometheus_dir).run();
}

std::vector<std::string> check_manifest_dir(const fs::path& dir, const fs::path& prometheus_dir) {
  auto set = load_kustomization(dir);
  return check_manifests(set, prometheus_dir);
}

std::string joined(const std::vector<std::string>& problems) {
  std::string s;
  for (const auto& p : problems)
    s += "  " + p + "\n";
  return s;
}

// ---------------------------------------------------------------------------------------------
// Test plumbing: a temporary copy of deploy/k8s, and running a tool.

const fs::path k_k8s_dir = EMBED_K8S_DIR;
const fs::path k_prometheus_dir = EMBED_PROMETHEUS_DIR;

class temp_dir {
public:
  temp_dir() {
    std::random_device rd;
    path_ = fs::temp_directory_path() / ("k8s_manifest_test." + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

private:
  fs::path path_;
};

// Rewrites every document of `file` with `edit`, which returns true where it changed something.
bool rewrite(const fs::path& file, const std::function<bool(YAML::Node&)>& edit) {
  auto docs = YAML::LoadAllFromFile(file.string());
  bool changed = false;
  YAML::Emitter out;
  for (auto& d : docs) {
    changed |= edit(d);
    out << YAML::BeginDoc << d << YAML::EndDoc;
  }
  std::ofstream(file, std::ios::binary | std::ios::trunc) << out.c_str() << '\n';
  return changed;
}

bool is(const YAML::Node& d, const std::string& kind, const std::string& name) {
  return str(at(d, "kind")) == kind && str(at(at(d, "metadata"), "name")) == name;
}

YAML::Node first_container(YAML::Node& d) {
  return d["spec"]["template"]["spec"]["containers"][0];
}

// Sets the arg starting with `prefix` to `value`.
bool set_arg(YAML::Node& d, const std::string& prefix, const std::string& value) {
  auto args = first_container(d)["args"];
  for (std::size_t i = 0; i < args.size(); ++i)
    if (args[i].as<std::string>().rfind(prefix, 0) == 0) {
      args[i] = value;
      return true;
    }
  return false;
}

bool remove_arg(YAML::Node& d, const std::string& arg) {
  auto args = first_container(d)["args"];
  for (std::size_t i = 0; i < args.size(); ++i)
    if (args[i].as<std::string>() == arg)
      return args.remove(i);
  return false;
}

struct tool_result {
  int status = -1;
  std::string output;
};

tool_result run_tool(const std::string& command) {
  tool_result r;
  FILE* p = popen(command.c_str(), "r");
  if (!p)
    return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0)
    r.output.append(buf.data(), n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

bool have_tool(const std::string& name) {
  return run_tool("command -v " + name + " >/dev/null 2>&1").status == 0;
}

std::string quoted(const fs::path& p) {
  return "'" + p.string() + "'";
}

// ---------------------------------------------------------------------------------------------

TEST(K8sManifests, RepositoryManifestsHaveNoProblems) {
  auto problems = check_manifest_dir(k_k8s_dir, k_prometheus_dir);
  EXPECT_TRUE(problems.empty()) << "problems in " << k_k8s_dir << ":\n" << joined(problems);
}

TEST(K8sManifests, AnUnchangedCopyHasNoProblems) {
  temp_dir tmp;
  fs::copy(k_k8s_dir, tmp.path(), fs::copy_options::recursive);
  auto problems = check_manifest_dir(tmp.path(), k_prometheus_dir);
  EXPECT_TRUE(problems.empty()) << joined(problems);
}

// A deliberately broken copy of deploy/k8s: one edit, and the problem the checks must name.
struct breakage {
  const char* name;
  const char* file;
  std::function<bool(YAML::Node&)> edit;
  std::vector<std::string> expected; // substrings of one reported problem
};

std::ostream& operator<<(std::ostream& os, const breakage& b) {
  return os << b.name;
}

class K8sBrokenCopy : public ::testing::TestWithParam<breakage> {};

TEST_P(K8sBrokenCopy, ProblemIsNamed) {
  const auto& b = GetParam();
  temp_dir tmp;
  fs::copy(k_k8s_dir, tmp.path(), fs::copy_options::recursive);
  ASSERT_TRUE(rewrite(tmp.path() / b.file, b.edit)) << "the edit found nothing to change";
  auto problems = check_manifest_dir(tmp.path(), k_prometheus_dir);
  ASSERT_FALSE(problems.empty()) << "the broken copy passed";
  bool named = std::any_of(problems.begin(), problems.end(), [&](const std::string& p) {
    return std::all_of(b.expected.begin(), b.expected.end(),
                       [&](const std::string& e) { return p.find(e) != std::string::npos; });
  });
  std::string want;
  for (const auto& e : b.expected)
    want += "'" + e + "' ";
  EXPECT_TRUE(named) << "no problem mentions " << want << "; got:\n" << joined(problems);
}

INSTANTIATE_TEST_SUITE_P(
    Breakages, K8sBrokenCopy,
    ::testing::Values(
        breakage{"WorkerServiceSelectorMismatch",
                 "worker.yaml",
                 [](YAML::Node& d) {
                   if (!is(d, "Service", "embed-worker"))
                     return false;
                   d["spec"]["selector"]["app"] = "gpu-wrker";
                   return true;
                 },
                 {"Service embed/embed-worker", "selector {app=gpu-wrker}", "matches no"}},
        breakage{"ProbeOnMissingNamedPort",
                 "gateway.yaml",
                 [](YAML::Node& d) {
                   if (!is(d, "Deployment", "embedd"))
                     return false;
                   first_container(d)["livenessProbe"]["tcpSocket"]["port"] = "grpc-health";
                   return true;
                 },
                 {"container embedd", "livenessProbe", "'grpc-health'", "named port"}},
        breakage{"GrpcProbeOnNamedPort",
                 "worker.yaml",
                 [](YAML::Node& d) {
                   if (!is(d, "Deployment", "gpu-worker"))
                     return false;
                   first_container(d)["readinessProbe"]["grpc"]["port"] = "grpc";
                   return true;
                 },
                 {"readinessProbe grpc port 'grpc'", "must be a number"}},
        breakage{"GracePeriodShorterThanDrain",
                 "worker.yaml",
                 [](YAML::Node& d) {
                   if (!is(d, "Deployment", "gpu-worker"))
                     return false;
                   d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 60;
                   return true;
                 },
                 {"gpu-worker", "terminationGracePeriodSeconds 60", "--drain-timeout 60"}},
        breakage{"DiscoveryOnServicePortOfGateway",
                 "gateway.yaml",
                 [](YAML::Node& d) {
                   return is(d, "Deployment", "embedd") &&
                          set_arg(d, "--workers-dns=",
                                  "--workers-dns=embed-worker.embed.svc.cluster.local:50051");
                 },
                 {"--workers-dns port 50051"}},
        breakage{"DiscoveryNameNotFqdn",
                 "gateway.yaml",
                 [](YAML::Node& d) {
                   return is(d, "Deployment", "embedd") &&
                          set_arg(d, "--workers-dns=", "--workers-dns=embed-worker:50052");
                 },
                 {"--workers-dns embed-worker:50052", ".svc.cluster.local"}},
        breakage{"DiscoveryServiceNotHeadless",
                 "worker.yaml",
                 [](YAML::Node& d) {
                   if (!is(d, "Service", "embed-worker"))
                     return false;
                   d["spec"].remove("clusterIP");
                   return true;
                 },
                 {"embed-worker", "headless"}},
        breakage{"WorkerPlaintextNotAllowed",
                 "worker.yaml",
                 [](YAML::Node& d) {
                   return is(d, "Deployment", "gpu-worker") &&
                          remove_arg(d, "--allow-insecure-remote");
                 },
                 {"container gpu-worker", "--listen 0.0.0.0:50052 is not loopback"}},
        breakage{"MissingConfigMap",
                 "worker.yaml",
                 [](YAML::Node& d) {
                   if (!is(d, "Deployment", "gpu-worker"))
                     return false;
                   first_container(d)["envFrom"][0]["configMapRef"]["name"] = "gpu-worker-cfg";
                   return true;
                 },
                 {"ConfigMap gpu-worker-cfg does not exist"}},
        breakage{"UndefinedArgumentVariable",
                 "worker.yaml",
                 [](YAML::Node& d) {
                   if (!is(d, "ConfigMap", "gpu-worker-config"))
                     return false;
                   d["data"].remove("WORKER_DTYPE");
                   return true;
                 },
                 {"$(WORKER_DTYPE)", "not a defined variable"}},
        breakage{"NoGpuRequested",
                 "worker.yaml",
                 [](YAML::Node& d) {
                   if (!is(d, "Deployment", "gpu-worker"))
                     return false;
                   first_container(d)["resources"]["requests"].remove("nvidia.com/gpu");
                   first_container(d)["resources"]["limits"].remove("nvidia.com/gpu");
                   return true;
                 },
                 {"does not request nvidia.com/gpu"}},
        breakage{"NoMemoryLimit",
                 "redis.yaml",
                 [](YAML::Node& d) {
                   if (!is(d, "Deployment", "embed-redis"))
                     return false;
                   first_container(d)["resources"]["limits"].remove("memory");
                   return true;
                 },
                 {"container redis", "no resources.limits.memory"}},
        breakage{"OldHpaApiVersion",
                 "gateway.yaml",
                 [](YAML::Node& d) {
                   if (!is(d, "HorizontalPodAutoscaler", "embedd"))
                     return false;
                   d["apiVersion"] = "autoscaling/v2beta2";
                   return true;
                 },
                 {"apiVersion autoscaling/v2beta2", "autoscaling/v2"}},
        breakage{"PdbSelectsNothing",
                 "gateway.yaml",
                 [](YAML::Node& d) {
                   if (!is(d, "PodDisruptionBudget", "embedd"))
                     return false;
                   d["spec"]["selector"]["matchLabels"]["app"] = "gateway";
                   return true;
                 },
                 {"PodDisruptionBudget embed/embedd", "matches no Deployment"}},
        breakage{"RulesDifferFromDeployPrometheus",
                 "prometheus-rules.yaml",
                 [](YAML::Node& d) {
                   if (!is(d, "ConfigMap", "prometheus-rules"))
                     return false;
                   d["data"]["alerts.yml"] = d["data"]["alerts.yml"].as<std::string>() + "# x\n";
                   return true;
                 },
                 {"alerts.yml differs from"}}),
    [](const ::testing::TestParamInfo<breakage>& info) { return std::string(info.param.name); });

// What kustomize renders is what reaches the cluster: it must build and pass the same checks.
TEST(K8sManifests, KubectlKustomizeBuildsAndPasses) {
  if (!have_tool("kubectl"))
    GTEST_SKIP() << "kubectl not installed";
  auto r = run_tool("kubectl kustomize " + quoted(k_k8s_dir) + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  manifest_set rendered;
  add_documents(rendered, r.output, "kubectl kustomize");
  ASSERT_FALSE(rendered.docs.empty());
  auto problems = check_manifests(rendered, k_prometheus_dir);
  EXPECT_TRUE(problems.empty()) << joined(problems);
}

// The Prometheus ConfigMaps laid out as README.md says (prometheus.yml, rules/*.yml).
void write_prometheus_files(const fs::path& to) {
  auto set = load_kustomization(k_k8s_dir);
  ASSERT_TRUE(set.problems.empty()) << joined(set.problems);
  fs::create_directories(to / "rules");
  int written = 0;
  for (const auto& d : set.docs) {
    if (is(d.node, "ConfigMap", k_prometheus_configmap)) {
      std::ofstream(to / "prometheus.yml", std::ios::binary)
          << str(at(at(d.node, "data"), "prometheus.yml"));
      ++written;
    } else if (is(d.node, "ConfigMap", k_rules_configmap)) {
      for (const auto& kv : at(d.node, "data"))
        std::ofstream(to / "rules" / kv.first.Scalar(), std::ios::binary) << kv.second.Scalar();
      ++written;
    }
  }
  ASSERT_EQ(written, 2) << "ConfigMaps " << k_prometheus_configmap << " and " << k_rules_configmap
                        << " expected";
}

// The rules as a pod would see them (the YAML-decoded ConfigMap data) pass promtool.
TEST(K8sManifests, RulesConfigMapPassesPromtool) {
  if (!have_tool("promtool"))
    GTEST_SKIP() << "promtool not installed";
  temp_dir tmp;
  ASSERT_NO_FATAL_FAILURE(write_prometheus_files(tmp.path()));
  auto r = run_tool("cd " + quoted(tmp.path()) + " && promtool check rules rules/*.yml 2>&1");
  EXPECT_EQ(r.status, 0) << r.output;
}

// The in-cluster scrape config, with its rule_files glob, passes promtool. Debian's promtool is
// built without Kubernetes service discovery: there the case skips itself.
TEST(K8sManifests, PrometheusConfigMapPassesPromtool) {
  if (!have_tool("promtool"))
    GTEST_SKIP() << "promtool not installed";
  temp_dir tmp;
  ASSERT_NO_FATAL_FAILURE(write_prometheus_files(tmp.path()));
  auto r = run_tool("cd " + quoted(tmp.path()) + " && promtool check config prometheus.yml 2>&1");
  if (r.status != 0 && r.output.find("kubernetes_sd_configs not found") != std::string::npos)
    GTEST_SKIP() << "this promtool has no Kubernetes service discovery:\n" << r.output;
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("rules/alerts.yml"), std::string::npos)
      << "promtool did not read the rule files:\n"
      << r.output;
}

} // namespace

#include "web_server.h"

#include "fusescope/core/privileges.h"

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>

namespace fusescope {

struct WebServer::Impl {
    WebServerOptions opts;
    Handler handler;
    Observer observer;
    std::vector<MHD_Daemon *> daemons;
    std::mutex log_mu;
    std::string last_log; // libmicrohttpd's last message: said when a daemon fails to start

    ~Impl() {
        for (MHD_Daemon *d : daemons)
            MHD_stop_daemon(d);
    }
};

namespace {

// GnuTLS verify functions (gnutls_session_set_verify_function): run in the handshake,
// nonzero fails it. The chain is checked against the client CAs libmicrohttpd loaded into
// the credentials, and the leaf must allow TLS client authentication, as Go checks it.
int verify_client(gnutls_session_t s, bool required) {
    unsigned n = 0;
    if (!gnutls_certificate_get_peers(s, &n) || n == 0)
        return required ? -1 : 0;
    gnutls_typed_vdata_st purpose{};
    purpose.type = GNUTLS_DT_KEY_PURPOSE_OID;
    purpose.data = reinterpret_cast<unsigned char *>(const_cast<char *>(GNUTLS_KP_TLS_WWW_CLIENT));
    unsigned status = 0;
    if (gnutls_certificate_verify_peers(s, &purpose, 1, &status) < 0 || status != 0)
        return -1;
    return 0;
}
int verify_if_given(gnutls_session_t s) { return verify_client(s, false); }
int verify_required(gnutls_session_t s) { return verify_client(s, true); }

// Before the handshake: how much of a client certificate this connection asks for.
void on_connection(void *cls, MHD_Connection *c, void **, MHD_ConnectionNotificationCode code) {
    auto *self = static_cast<WebServer::Impl *>(cls);
    if (code != MHD_CONNECTION_NOTIFY_STARTED || !self->opts.tls)
        return;
    const MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session)
        return;
    auto s = static_cast<gnutls_session_t>(ci->tls_session);
    switch (self->opts.tls->client_auth) {
    case ClientAuth::None:
        gnutls_certificate_server_set_request(s, GNUTLS_CERT_IGNORE);
        break;
    case ClientAuth::Request:
        gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUEST);
        break;
    case ClientAuth::RequireAny:
        gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
        break;
    case ClientAuth::VerifyIfGiven:
        gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUEST);
        gnutls_session_set_verify_function(s, verify_if_given);
        break;
    case ClientAuth::RequireAndVerify:
        gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
        gnutls_session_set_verify_function(s, verify_required);
        break;
    }
}

void on_log(void *cls, const char *fmt, va_list ap) {
    auto *self = static_cast<WebServer::Impl *>(cls);
    char buf[512];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    std::string msg(buf);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' '))
        msg.pop_back();
    if (self->opts.verbose)
        std::fprintf(stderr, "fusescope export: libmicrohttpd: %s\n", msg.c_str());
    std::lock_guard lk(self->log_mu);
    self->last_log = std::move(msg);
}

MHD_Result send(MHD_Connection *c, const HttpResponse &r, bool auth_failed) {
    MHD_Response *resp = MHD_create_response_from_buffer(
        r.body.size(), const_cast<char *>(r.body.data()), MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.content_type.c_str());
    if (r.status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    const MHD_Result ret = auth_failed ? MHD_queue_basic_auth_fail_response(c, "fusescope", resp)
                                       : MHD_queue_response(c, r.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

// One call per request, as soon as its headers are in: fusescope's requests have no body,
// so it answers at once (a body, if any, is not read; the connection closes after).
MHD_Result on_request(void *cls, MHD_Connection *c, const char *url, const char *method,
                      const char *, const char *, size_t *, void **) {
    auto *self = static_cast<WebServer::Impl *>(cls);
    const std::string_view path = url ? url : "";
    const std::string_view m = method ? method : "";
    HttpResponse r;
    bool auth_failed = false;
    if (self->opts.auth && self->opts.auth->enabled()) {
        char *pass = nullptr;
        char *user = MHD_basic_auth_get_username_password(c, &pass);
        auth_failed = !user || !pass || !self->opts.auth->check(user, pass);
        MHD_free(user);
        MHD_free(pass);
    }
    if (auth_failed) {
        r.status = MHD_HTTP_UNAUTHORIZED;
        r.body = "Unauthorized\n";
    } else if (m != MHD_HTTP_METHOD_GET && m != MHD_HTTP_METHOD_HEAD) {
        r.status = MHD_HTTP_METHOD_NOT_ALLOWED;
        r.body = "Method Not Allowed\n";
    } else {
        try {
            r = self->handler(HttpRequest{m, path});
        } catch (const std::exception &e) {
            r = HttpResponse{MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain; charset=utf-8",
                             std::string("internal error: ") + e.what() + "\n"};
        }
    }
    const MHD_Result ret = send(c, r, auth_failed);
    if (self->observer)
        self->observer(path, r.status);
    return ret;
}

MHD_Daemon *start_daemon(WebServer::Impl *self, int fd) {
    const WebServerOptions &o = self->opts;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    std::vector<MHD_OptionItem> opts = {
        {MHD_OPTION_LISTEN_SOCKET, fd, nullptr},
        {MHD_OPTION_CONNECTION_LIMIT, static_cast<intptr_t>(o.max_connections), nullptr},
        {MHD_OPTION_CONNECTION_TIMEOUT, static_cast<intptr_t>(o.idle_timeout_s), nullptr},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<intptr_t>(o.request_memory), nullptr},
        {MHD_OPTION_NOTIFY_CONNECTION, reinterpret_cast<intptr_t>(&on_connection), self},
        {MHD_OPTION_EXTERNAL_LOGGER, reinterpret_cast<intptr_t>(&on_log), self},
    };
    if (o.tls) {
        flags |= MHD_USE_TLS;
        opts.push_back({MHD_OPTION_HTTPS_MEM_CERT, 0, const_cast<char *>(o.tls->cert_pem.c_str())});
        opts.push_back({MHD_OPTION_HTTPS_MEM_KEY, 0, const_cast<char *>(o.tls->key_pem.c_str())});
        if (!o.tls->ca_pem.empty())
            opts.push_back(
                {MHD_OPTION_HTTPS_MEM_TRUST, 0, const_cast<char *>(o.tls->ca_pem.c_str())});
        opts.push_back(
            {MHD_OPTION_HTTPS_PRIORITIES, 0, const_cast<char *>(o.tls->priorities.c_str())});
    }
    opts.push_back({MHD_OPTION_END, 0, nullptr});
    return MHD_start_daemon(flags, 0, nullptr, nullptr, &on_request, self, MHD_OPTION_ARRAY,
                            opts.data(), MHD_OPTION_END);
}

} // namespace

WebServer::WebServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WebServer::~WebServer() = default;

std::unique_ptr<WebServer> WebServer::start(WebServerOptions opts, Handler handler,
                                            Observer observer, std::string *error,
                                            std::string *warning) {
    auto impl = std::make_unique<Impl>();
    impl->opts = std::move(opts);
    impl->handler = std::move(handler);
    impl->observer = std::move(observer);
    Impl *self = impl.get();
    auto launch = [self, error, warning] {
        if (std::string why; self->opts.unprivileged_threads && !drop_all_privileges(&why))
            *warning = "the HTTP server's threads keep the exporter's privileges: " + why;
        for (int fd : self->opts.listen_fds) {
            MHD_Daemon *d = start_daemon(self, fd);
            if (!d) {
                std::lock_guard lk(self->log_mu);
                *error = "the HTTP server did not start" +
                         (self->last_log.empty() ? "" : ": " + self->last_log);
                return;
            }
            self->daemons.push_back(d);
        }
    };
    if (self->opts.unprivileged_threads)
        std::thread(launch).join(); // its children, the daemons' threads, inherit its sets
    else
        launch();
    if (!error->empty())
        return nullptr;
    return std::unique_ptr<WebServer>(new WebServer(std::move(impl)));
}

size_t WebServer::connections() const {
    size_t n = 0;
    for (MHD_Daemon *d : impl_->daemons)
        if (const MHD_DaemonInfo *i = MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS))
            n += i->num_connections;
    return n;
}

} // namespace fusescope

// The op table: one row per op, and what the dispatcher derives from it.

#include "dispatcher.hpp"
#include "held_request.hpp"
#include "op_table.hpp"

#include <fxd/protocol/decoder.hpp>
#include <fxd/protocol/encoder.hpp>

#include <boost/json/value.hpp>
#include <boost/test/unit_test.hpp>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <string>

namespace {

using namespace fxd;
using daemon::admission;
using daemon::transport;

/// A dispatcher with no services attached: enough for admission.
struct admitting {
    daemon::config cfg;
    services::counters stats;
    std::shared_ptr<spdlog::logger> log = std::make_shared<spdlog::logger>("t", std::make_shared<spdlog::sinks::null_sink_mt>());
    daemon::worker_pool workers{1, 4};
    daemon::worker_pool hashes{1, 4};
    daemon::dispatcher dispatcher{cfg, stats, *log, workers, hashes};
    protocol::header_parser parser;
    protocol::request_header request;

    admission admit(std::string_view header_json, transport via = transport::tcp, bool logged_in = true)
    {
        protocol::errc error{};
        BOOST_REQUIRE(parser.parse(header_json, request, error));
        daemon::session_context session;
        session.peer_address = "127.0.0.1";
        session.address_key = "127.0.0.1";
        session.user = logged_in ? "alice" : "";
        return dispatcher.admit(request, via, false, via == transport::udp ? nullptr : &session);
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(op_table, *boost::unit_test::timeout(30))

BOOST_AUTO_TEST_CASE(has_one_row_per_op_in_protocol_order)
{
    const auto rows = daemon::all_ops();
    BOOST_TEST(rows.size() == protocol::op_count);
    for (std::size_t i = 0; i < rows.size(); ++i) {
        BOOST_TEST(static_cast<std::size_t>(rows[i].op) == i);
        BOOST_TEST(&daemon::spec_of(rows[i].op) == &rows[i]);
    }
}

BOOST_AUTO_TEST_CASE(every_row_names_the_handler_its_shape_calls)
{
    for (const auto& row : daemon::all_ops()) {
        BOOST_TEST_CONTEXT(protocol::to_string(row.op))
        {
            BOOST_TEST((row.shape == daemon::op_shape::loop) == (row.serve != nullptr));
            BOOST_TEST((row.shape == daemon::op_shape::worker) == (row.work != nullptr));
        }
    }
}

BOOST_AUTO_TEST_CASE(udp_offers_exactly_what_the_contract_says)
{
    for (const auto& row : daemon::all_ops()) {
        BOOST_TEST_CONTEXT(protocol::to_string(row.op))
        {
            BOOST_TEST(row.offered_over(transport::udp) == protocol::offered_on_udp(row.op));
            BOOST_TEST(row.offered_over(transport::tcp));
        }
    }
}

BOOST_AUTO_TEST_CASE(admission_follows_each_rows_shape_and_body)
{
    admitting a;
    BOOST_TEST((a.admit(R"({"op":"ping"})").action == admission::kind::serve_now));
    BOOST_TEST((a.admit(R"({"op":"echo","size":3})").action == admission::kind::buffer));
    BOOST_TEST((a.admit(R"({"op":"login"})").action == admission::kind::work));
    BOOST_TEST((a.admit(R"({"op":"list"})").action == admission::kind::work));
    BOOST_TEST((a.admit(R"({"op":"upload","name":"a","size":3})").action == admission::kind::upload));
    BOOST_TEST((a.admit(R"({"op":"download","name":"a"})").action == admission::kind::download));
}

BOOST_AUTO_TEST_CASE(refusals_come_from_the_rows)
{
    admitting a;
    auto refused = [&](std::string_view json, protocol::errc code, transport via = transport::tcp, bool login = true) {
        const auto plan = a.admit(json, via, login);
        BOOST_TEST_CONTEXT(json)
        {
            BOOST_TEST((plan.action == admission::kind::refuse));
            BOOST_TEST(protocol::to_string(plan.code) == protocol::to_string(code));
        }
    };
    refused(R"({"op":"login"})", protocol::errc::unsupported, transport::udp);
    refused(R"({"op":"list"})", protocol::errc::unauthorized, transport::tcp, false);
    refused(R"({"op":"stat"})", protocol::errc::bad_request);
    refused(R"({"op":"stat","name":".hidden"})", protocol::errc::bad_name);
    refused(R"({"op":"download","name":"a","offset":-1})", protocol::errc::bad_request);
    refused(R"({"op":"upload","name":"a","sha256":"ABC"})", protocol::errc::bad_request);
    refused(R"({"op":"ping","size":100000000})", protocol::errc::body_too_large);
    refused(R"({"op":"echo","size":100000000})", protocol::errc::body_too_large);
    refused(R"({"op":"nope"})", protocol::errc::unknown_op);
}

BOOST_AUTO_TEST_CASE(hello_lists_every_tcp_row)
{
    admitting a;
    std::string out;
    BOOST_REQUIRE((a.admit(R"({"op":"hello"})").action == admission::kind::serve_now));
    a.dispatcher.serve(a.request, {}, nullptr, out);
    for (const auto& row : daemon::all_ops()) {
        BOOST_TEST_CONTEXT(protocol::to_string(row.op))
        {
            BOOST_TEST(out.find('"' + std::string(protocol::to_string(row.op)) + '"') != std::string::npos);
        }
    }
}

BOOST_AUTO_TEST_CASE(a_held_request_outlives_the_parser_it_came_from)
{
    protocol::header_parser parser;
    protocol::request_header first;
    protocol::errc error{};
    BOOST_REQUIRE(parser.parse(R"({"op":"upload","id":"abc","name":"kept.txt","size":7,"offset":2})", first, error));
    const daemon::held_request held(first);
    protocol::request_header second;
    BOOST_REQUIRE(parser.parse(R"({"op":"ping","id":99,"name":"overwritten-by-the-next-header"})", second, error));

    const auto& h = held.header();
    BOOST_TEST((h.operation == protocol::op::upload));
    BOOST_TEST(h.op_name == "upload");
    BOOST_REQUIRE(h.id);
    BOOST_TEST(h.id->as_string() == "abc");
    BOOST_TEST(h.size == 7u);
    BOOST_TEST(protocol::string_field(h, "name").value_or("") == "kept.txt");
    BOOST_TEST(protocol::request_body_length(h) == 5u);
}

BOOST_AUTO_TEST_SUITE_END()

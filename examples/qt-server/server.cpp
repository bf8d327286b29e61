// A small Qt 5 (C++) server that speaks docs/protocol.md, for ClientQt to call.
// Answers JSON requests in JSON and CBOR requests in CBOR.
//
// Build:  g++ -std=c++17 -fPIC server.cpp $(pkg-config --cflags --libs Qt5Network) -o server
// Usage:  ./server tcp PORT     (0 = any free port, on 127.0.0.1)
//         ./server local NAME   (a QLocalServer name or socket path)
//
// Prints {"event":"ready",...} on stdout once listening, and {"event":"cancel","id":...}
// for every cancel it receives. The patterns are those of server.py:
//   sum [a, b, ...] -> the sum;  echo -> the data (CBOR byte strings stay byte strings);
//   count {n, ms} -> a stream 1..n, one value every ms;
//   fail {message} -> an error reply;  notes -> the data of every `note` event so far;
//   anything else -> the "no matching message handler" error.
// No moc is needed: every connection is to a lambda.

#include <QCborArray>
#include <QCborMap>
#include <QCborValue>
#include <QCoreApplication>
#include <QDataStream>
#include <QHash>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLocalServer>
#include <QLocalSocket>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTimer>

#include <cstdio>
#include <memory>

static const QString NoHandler =
    QStringLiteral("There is no matching message handler defined in the remote service.");
static QCborArray notes; // the data of every `note` event, for the `notes` request

static void say(const QJsonObject &line)
{
    std::printf("%s\n", QJsonDocument(line).toJson(QJsonDocument::Compact).constData());
    std::fflush(stdout);
}

// One client. The packets are handled as QCborMap whatever the codec: a JSON frame is
// converted with QCborMap::fromJsonObject, and its replies back with toJsonObject().
class Connection
{
public:
    template <typename Socket>
    explicit Connection(Socket *socket) : socket(socket), in(socket), out(socket)
    {
        QObject::connect(socket, &QIODevice::readyRead, [this] { readFrames(); });
        QObject::connect(socket, &Socket::disconnected, [this] { delete this; });
    }

    ~Connection()
    {
        qDeleteAll(streams); // stops the streams still running
        socket->disconnect(); // no more signals to this connection
        socket->deleteLater();
    }

private:
    QIODevice *socket;
    // Two streams: a read that waits for more bytes leaves its stream at ReadPastEnd,
    // and Qt drops whatever is written through a stream in that state.
    QDataStream in;  // for reading only
    QDataStream out; // for writing only
    QHash<QString, QTimer *> streams; // running `count` streams, by request id

    void readFrames()
    {
        for (;;) {
            in.startTransaction();
            QByteArray frame;
            in >> frame;
            if (!in.commitTransaction())
                return; // part of a frame: wait for the rest
            const bool json = frame.startsWith('{');
            QCborMap packet;
            if (json) {
                QJsonParseError error;
                const QJsonDocument doc = QJsonDocument::fromJson(frame, &error);
                if (error.error == QJsonParseError::NoError && doc.isObject())
                    packet = QCborMap::fromJsonObject(doc.object());
            } else if (!frame.isEmpty()) {
                QCborParserError error;
                const QCborValue value = QCborValue::fromCbor(frame, &error);
                if (error.error == QCborError::NoError && value.isMap())
                    packet = value.toMap();
            }
            if (packet.isEmpty()) {
                abortSocket(); // null or empty frame, bad payload: a protocol error
                return;
            }
            handle(packet, json);
        }
    }

    void abortSocket()
    {
        if (auto tcp = qobject_cast<QTcpSocket *>(socket))
            tcp->abort();
        else if (auto local = qobject_cast<QLocalSocket *>(socket))
            local->abort();
    }

    void reply(const QCborMap &packet, bool json)
    {
        out << (json ? QJsonDocument(packet.toJsonObject()).toJson(QJsonDocument::Compact)
                     : packet.toCborValue().toCbor());
    }

    static QString key(const QCborValue &id) { return id.toVariant().toString(); }

    void handle(const QCborMap &packet, bool json)
    {
        const QCborValue id = packet.value(QStringLiteral("id"));
        const QString pattern = packet.value(QStringLiteral("pattern")).toString();
        const QCborValue data = packet.value(QStringLiteral("data"));
        const auto field = [&](const char *name) { return data[QLatin1String(name)]; };

        if (packet.value(QStringLiteral("cancel")).isTrue()) {
            delete streams.take(key(id));
            say({{"event", "cancel"}, {"id", id.toJsonValue()}});
        } else if (id.isUndefined()) { // an event: no reply, whatever happens
            if (pattern == QLatin1String("note"))
                notes.append(data);
        } else if (pattern == QLatin1String("sum")) {
            qint64 whole = 0;
            double real = 0;
            bool integral = true;
            for (const QCborValue v : data.toArray()) {
                integral = integral && v.isInteger();
                whole += v.toInteger();
                real += v.toDouble();
            }
            const QCborValue sum = integral ? QCborValue(whole) : QCborValue(real);
            reply({{"id", id}, {"response", sum}, {"isDisposed", true}}, json);
        } else if (pattern == QLatin1String("echo")) {
            reply({{"id", id}, {"response", data}, {"isDisposed", true}}, json);
        } else if (pattern == QLatin1String("count")) {
            count(id, field("n").toInteger(), field("ms").toInteger(), json);
        } else if (pattern == QLatin1String("fail")) {
            const QCborMap err{{"status", "error"},
                               {"message", field("message").toString(QStringLiteral("failed"))}};
            reply({{"id", id}, {"err", err}, {"isDisposed", true}}, json);
        } else if (pattern == QLatin1String("notes")) {
            reply({{"id", id}, {"response", notes}, {"isDisposed", true}}, json);
        } else {
            reply({{"id", id}, {"err", NoHandler}, {"isDisposed", true}, {"status", "error"}},
                  json);
        }
    }

    void count(const QCborValue &id, qint64 n, qint64 ms, bool json)
    {
        if (n <= 0) {
            reply({{"id", id}, {"isDisposed", true}}, json);
            return;
        }
        auto timer = new QTimer;
        streams.insert(key(id), timer);
        auto sent = std::make_shared<qint64>(0);
        QObject::connect(timer, &QTimer::timeout, [=] {
            QCborMap packet{{"id", id}, {"response", ++*sent}};
            const bool last = *sent == n;
            if (last) // isDisposed rides on the last value
                packet.insert(QStringLiteral("isDisposed"), true);
            reply(packet, json);
            if (last) {
                timer->stop();
                timer->deleteLater(); // not `delete`: this runs inside its own signal
                streams.remove(key(id));
            }
        });
        timer->start(int(ms));
    }
};

int main(int argc, char *argv[])
{
    QCoreApplication app(argc, argv);
    if (argc != 3)
        qFatal("usage: server tcp PORT | server local NAME");
    const QString kind = QString::fromLocal8Bit(argv[1]);
    const QString where = QString::fromLocal8Bit(argv[2]);

    QTcpServer tcp;
    QLocalServer local;
    if (kind == QLatin1String("tcp")) {
        if (!tcp.listen(QHostAddress::LocalHost, quint16(where.toUInt())))
            qFatal("listen: %s", qPrintable(tcp.errorString()));
        QObject::connect(&tcp, &QTcpServer::newConnection, [&] {
            while (tcp.hasPendingConnections())
                new Connection(tcp.nextPendingConnection());
        });
        say({{"event", "ready"}, {"port", int(tcp.serverPort())}});
    } else {
        QLocalServer::removeServer(where); // a socket file left by a crashed run
        if (!local.listen(where))
            qFatal("listen: %s", qPrintable(local.errorString()));
        QObject::connect(&local, &QLocalServer::newConnection, [&] {
            while (local.hasPendingConnections())
                new Connection(local.nextPendingConnection());
        });
        say({{"event", "ready"}, {"name", local.fullServerName()}});
    }
    return app.exec();
}

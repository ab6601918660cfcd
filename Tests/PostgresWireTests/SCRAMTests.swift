import Testing
@testable import PostgresWire

@Suite struct SCRAMTests {
    static let serverFirst = Array("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".utf8)

    @Test func rfc7677Example() throws {
        var scram = SCRAMSHA256(user: "user", password: "pencil", clientNonce: "rOprNGfwEbeRWgbNEkqO")
        #expect(String(decoding: scram.clientFirstMessage, as: UTF8.self) == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        let final = try scram.clientFinalMessage(serverFirst: Self.serverFirst)
        #expect(String(decoding: final, as: UTF8.self)
            == "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
        try scram.verify(serverFinal: Array("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8))
    }

    @Test func wrongServerSignatureIsRefused() throws {
        var scram = SCRAMSHA256(user: "user", password: "pencil", clientNonce: "rOprNGfwEbeRWgbNEkqO")
        _ = try scram.clientFinalMessage(serverFirst: Self.serverFirst)
        #expect(throws: SCRAMSHA256.Failure.serverNotProven) {
            try scram.verify(serverFinal: Array("v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=".utf8))
        }
    }

    @Test func serverNonceMustExtendTheClients() {
        var scram = SCRAMSHA256(password: "pencil", clientNonce: "abc")
        #expect(throws: SCRAMSHA256.Failure.self) {
            try scram.clientFinalMessage(serverFirst: Array("r=xyzdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".utf8))
        }
        #expect(throws: SCRAMSHA256.Failure.self) {
            try scram.clientFinalMessage(serverFirst: Array("r=abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".utf8))
        }
    }
}

@Suite struct StartupStateMachineTests {
    @Test func scramLoginAsPostgreSQLDoesIt() {
        var machine = StartupStateMachine(user: "ferry", password: "pencil", clientNonce: "rOprNGfwEbeRWgbNEkqO")
        #expect(machine.received(.authentication(.sasl(mechanisms: ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"])))
            == .sendSASLInitialResponse(mechanism: "SCRAM-SHA-256", data: Array("n,,n=,r=rOprNGfwEbeRWgbNEkqO".utf8)))
        #expect(machine.received(.authentication(.saslContinue(SCRAMTests.serverFirst)))
            == .sendSASLResponse(Array("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k=".utf8)))
        #expect(machine.received(.authentication(.saslFinal(Array("v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=".utf8)))) == .wait)
        #expect(machine.received(.authentication(.ok)) == .wait)
        #expect(machine.received(.parameterStatus(name: "server_version", value: "15.14")) == .wait)
        #expect(machine.received(.backendKeyData(processID: 42, secretKey: 7)) == .wait)
        #expect(machine.received(.readyForQuery(transactionStatus: UInt8(ascii: "I"))) == .ready)
        #expect(machine.parameters == ["server_version": "15.14"])
        #expect(machine.processID == 42)
    }

    @Test func aServerThatSkipsTheProofIsRefused() {
        var machine = StartupStateMachine(user: "ferry", password: "pencil", clientNonce: "rOprNGfwEbeRWgbNEkqO")
        _ = machine.received(.authentication(.sasl(mechanisms: ["SCRAM-SHA-256"])))
        _ = machine.received(.authentication(.saslContinue(SCRAMTests.serverFirst)))
        guard case .fail(.authentication) = machine.received(.authentication(.ok)) else {
            Issue.record("AuthenticationOk without SASLFinal was accepted")
            return
        }
    }

    @Test func md5Password() {
        var machine = StartupStateMachine(user: "ferry", password: "ferry-secret")
        #expect(machine.received(.authentication(.md5Password(salt: [1, 2, 3, 4]))) == .sendPassword("md5615d4084513ba7a55099e2c88b7e8b6f"))
    }

    @Test func refusalsSayWhy() {
        var noPassword = StartupStateMachine(user: "ferry", password: nil)
        guard case .fail(.authentication(let text)) = noPassword.received(.authentication(.cleartextPassword)) else {
            Issue.record("a password request without a password did not fail")
            return
        }
        #expect(text.contains("none is configured"))
        var wrong = StartupStateMachine(user: "ferry", password: "x")
        let refused = PostgresServerError(fields: [UInt8(ascii: "C"): "28P01", UInt8(ascii: "M"): "password authentication failed for user \"ferry\""])
        #expect(wrong.received(.error(refused)) == .fail(.authentication(refused.description)))
        var gss = StartupStateMachine(user: "ferry", password: "x")
        guard case .fail(.authentication) = gss.received(.authentication(.other(7))) else {
            Issue.record("GSS was not refused")
            return
        }
    }
}

import NIOConcurrencyHelpers
import Testing
@testable import PostgresWire

/// The inbox holds the channel's reads while `limit` messages wait, and reads again once its
/// owner takes them: a server faster than the owner waits in TCP, not in memory.
@Suite struct MessageInboxTests {
    @Test func aFullInboxHoldsReadsUntilItsOwnerTakes() async throws {
        let inbox = MessageInbox(limit: 3)
        let readsAgain = NIOLockedValueBox(0)
        inbox.attach { readsAgain.withLockedValue { $0 += 1 } }
        #expect(inbox.admitRead())
        for n in 0..<3 { inbox.deliver(.commandComplete("\(n)")) }
        #expect(!inbox.admitRead())
        // A read already under way still delivers; nothing is lost past the limit.
        inbox.deliver(.commandComplete("3"))
        #expect(readsAgain.withLockedValue { $0 } == 0)
        #expect(try await inbox.next() == (0..<4).map { .commandComplete("\($0)") })
        #expect(readsAgain.withLockedValue { $0 } == 1)
        #expect(inbox.admitRead())
        // Taking without a held read asks for nothing.
        inbox.deliver(.commandComplete("4"))
        #expect(try await inbox.next() == [.commandComplete("4")])
        #expect(readsAgain.withLockedValue { $0 } == 1)
    }
}
